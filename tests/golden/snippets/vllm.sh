#!/bin/sh
# tunelake: vLLM launch command (flags as vLLM 0.33 spells them) for supply `s`.
# replicas: 2 -> 1 (set in the orchestrator, not the engine)
# block_size: 16 -> 32
# max_num_seqs: 256 -> 512
# gpu_memory_utilization: 0.9 -> 0.85
# speculative: off -> meta-llama/Llama-3.1-8B-Instruct drafting 4 tokens
#
# Before:
#   vllm serve meta-llama/Llama-3.1-70B-Instruct \
#       --tensor-parallel-size 4 \
#       --block-size 16 \
#       --max-num-seqs 256 \
#       --max-num-batched-tokens 8192 \
#       --long-prefill-token-threshold 0 \
#       --gpu-memory-utilization 0.9 \
#       --kv-cache-dtype auto \
#       --enable-prefix-caching \
#       --enable-chunked-prefill
# After:
vllm serve meta-llama/Llama-3.1-70B-Instruct \
    --tensor-parallel-size 4 \
    --block-size 32 \
    --max-num-seqs 512 \
    --max-num-batched-tokens 8192 \
    --long-prefill-token-threshold 0 \
    --gpu-memory-utilization 0.85 \
    --kv-cache-dtype auto \
    --enable-prefix-caching \
    --enable-chunked-prefill \
    --speculative-config '{"method":"draft_model","model":"meta-llama/Llama-3.1-8B-Instruct","num_speculative_tokens":4}'
