#!/bin/sh
# tunelake: SGLang server command (sglang.launch_server flags) for supply `s`.
# replicas: 2 -> 4 (set in the orchestrator, not the engine)
# max_num_seqs: 256 -> 512
# kv_offload_gib: 0.0 -> 64.0
# pd_disaggregation: off -> 1:3
# schedule_policy: fcfs -> lpm
#
# Before:
#   python \
#       -m sglang.launch_server \
#       --model-path meta-llama/Llama-3.1-70B-Instruct \
#       --tp-size 4 \
#       --max-running-requests 256 \
#       --mem-fraction-static 0.85 \
#       --chunked-prefill-size 8192
# After:
python \
    -m sglang.launch_server \
    --model-path meta-llama/Llama-3.1-70B-Instruct \
    --tp-size 4 \
    --max-running-requests 512 \
    --mem-fraction-static 0.85 \
    --chunked-prefill-size 8192 \
    --schedule-policy lpm \
    --enable-hierarchical-cache \
    --hicache-size 16 \
    --disaggregation-mode prefill \
    --disaggregation-transfer-backend nixl
# Disaggregated: run 1 prefill instance(s) with the command above and 3 decode instance(s) with
# `--disaggregation-mode decode` instead, behind SGLang's router in its prefill/decode mode, which
# pairs a prefill and a decode instance for each request (they hand the KV over through the
# bootstrap port).
