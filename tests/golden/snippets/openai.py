# tunelake: OpenAI-compatible client defaults for supply `s`.
from openai import OpenAI

client = OpenAI()


def complete(messages):
    return client.chat.completions.create(
        messages=messages,
        max_completion_tokens=512,
        model="meta-llama/Llama-3.1-70B-Instruct",
        temperature=0.2,
    )
