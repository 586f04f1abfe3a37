#!/bin/sh
# tunelake: TGI launcher command (text-generation-launcher v3.3 flags) for supply `s`.
# replicas: 2 -> 4 (set in the orchestrator, not the engine)
# max_num_seqs: 256 -> 512
# gpu_memory_utilization: 0.9 -> 0.85
# waiting_served_ratio: 0.3 -> 1.2
#
# Before:
#   text-generation-launcher \
#       --model-id meta-llama/Llama-3.1-70B-Instruct \
#       --num-shard 4 \
#       --max-batch-size 256 \
#       --max-batch-prefill-tokens 4096 \
#       --cuda-memory-fraction 0.9
# After:
text-generation-launcher \
    --model-id meta-llama/Llama-3.1-70B-Instruct \
    --num-shard 4 \
    --max-batch-size 512 \
    --max-batch-prefill-tokens 4096 \
    --cuda-memory-fraction 0.85 \
    --waiting-served-ratio 1.2
