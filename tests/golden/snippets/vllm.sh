#!/bin/sh
# tunelake: vLLM launch command (flags as vLLM 0.33 spells them) for supply `s`.
# replicas: 2 -> 4 (set in the orchestrator, not the engine)
# block_size: 16 -> 32
# max_num_seqs: 256 -> 512
# gpu_memory_utilization: 0.9 -> 0.85
# speculative: off -> meta-llama/Llama-3.1-8B-Instruct drafting 4 tokens
# kv_offload_gib: 0.0 -> 64.0
# pd_disaggregation: off -> 1:3
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
    --kv-offloading-size 64 \
    --kv-offloading-backend native \
    --kv-transfer-config '{"kv_connector":"NixlConnector","kv_role":"kv_both"}' \
    --speculative-config '{"method":"draft_model","model":"meta-llama/Llama-3.1-8B-Instruct","num_speculative_tokens":4}'
# Disaggregated: run 1 prefill instance(s) with the command above and 3 decode instance(s) with
# the same command (NixlConnector takes its role from the router), behind a P/D-aware router
# (vLLM's disaggregated proxy, llm-d or NVIDIA Dynamo) that sends each request to a prefill
# instance with max_tokens = 1, then to a decode instance with the kv_transfer_params the prefill
# instance returned.
