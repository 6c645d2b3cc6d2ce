# Short aliases for those who have `just`; `cargo xtask` is the entry point that needs only cargo.

# list the recipes
default:
    @just --list

# run the gateway on the embedded defaults (simulated upstream unless OPENAI_API_KEY is set)
run *ARGS:
    cargo run --release -p ferry -- serve {{ARGS}}

# everything CI runs: installs what is missing, then fmt, clippy, tests, doctests, e2e
test:
    cargo xtask test

# fmt --check, clippy -D warnings, cargo doc with RUSTDOCFLAGS=-D warnings
lint:
    cargo xtask lint

# review pending insta snapshots
snap:
    cargo insta review

# the SSE parser benchmarks
bench:
    cargo xtask bench

# the end-to-end suites (Anthropic Python SDK, Claude Code in print mode) against `ferry serve`
e2e:
    cargo xtask e2e

# the profile-guided release build: target/pgo/release/ferry
pgo:
    cargo xtask pgo

# ferry vs LiteLLM vs the upstream alone (writes the Gateway section of docs/BENCHMARKS.md); --quick for a smoke run
bench-gateway *ARGS:
    cargo xtask bench-gateway {{ARGS}}
