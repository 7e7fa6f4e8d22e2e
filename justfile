# ae: autoencoder anomaly detection. `just` lists the recipes.
# Every recipe is a plain cargo command, so nothing here needs `just` itself.

set shell := ["bash", "-euo", "pipefail", "-c"]

# List the recipes
default:
    @just --list

# Run every stage of an experiment, e.g. `just pipeline configs/default.toml --set train.epochs=5`
[group('run')]
pipeline CONFIG *ARGS:
    cargo run --release --quiet -- pipeline {{CONFIG}} {{ARGS}}

# Run one stage of an experiment, e.g. `just stage data configs/default.toml`
[group('run')]
stage NAME CONFIG *ARGS:
    cargo run --release --quiet -- stage {{NAME}} {{CONFIG}} {{ARGS}}

# Say which stages of an experiment are fresh or stale, and why
[group('run')]
status CONFIG *ARGS:
    cargo run --release --quiet -- status {{CONFIG}} {{ARGS}}

# Run an experiment at every point of a grid, e.g. `just sweep configs/sweeps/seeds.toml --jobs 2`
[group('run')]
sweep FILE *ARGS:
    cargo run --release --quiet -- sweep {{FILE}} {{ARGS}}

# Time the training engines on an experiment's data, e.g. `just bench configs/default.toml`
[group('run')]
bench CONFIG *ARGS:
    cargo run --release --quiet -- bench {{CONFIG}} {{ARGS}}

# Submit a sweep's unfinished points to SLURM, e.g. `just sweep-slurm configs/sweeps/seeds.toml --partition short`
[group('run')]
sweep-slurm FILE *ARGS:
    cargo run --release --quiet -- sweep {{FILE}} --slurm {{ARGS}}

# Where each point of a sweep stands (finished, running, failed, not started), and the summary so far
[group('run')]
sweep-status FILE *ARGS:
    cargo run --release --quiet -- sweep {{FILE}} --status {{ARGS}}

# Score new images with a trained run's detector, e.g. `just score runs/default images/ --out scores.parquet`
[group('run')]
score DETECTOR *ARGS:
    cargo run --release --quiet -- score {{DETECTOR}} {{ARGS}}

# Export a trained run's detector as an ONNX model, e.g. `just export runs/default detector.onnx`
[group('run')]
export DETECTOR FILE:
    cargo run --release --quiet -- export {{DETECTOR}} --onnx {{FILE}}

# Run the tests; the real-data tests need AE_DATA_DIR (e.g. AE_DATA_DIR=../shared/data)
[group('check')]
test:
    cargo test --workspace

# Check formatting and lints as CI does
[group('check')]
lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings

# Start a one-node SLURM cluster for the cluster test (root; apt-get install slurm-wlm munge),
# then `export SLURM_CONF=$PWD/target/slurm/slurm.conf`
[group('check')]
slurm-up:
    tests/slurm/cluster.sh start target/slurm

# Stop the cluster `just slurm-up` started
[group('check')]
slurm-down:
    tests/slurm/cluster.sh stop target/slurm
