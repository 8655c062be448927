# One entry point per task; `make help` lists them.
SHELL := /usr/bin/env bash
.DEFAULT_GOAL := help

.PHONY: help dev test lint unit build clean-test-databases

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

dev: ## Run the whole system locally: LocalStack, an SMTP server with a web UI, both services
	cargo build --workspace
	scripts/dev.sh

build: ## Build every crate and test (debug)
	cargo build --workspace --all-targets

lint: ## Formatting and clippy, warnings as errors
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings

test: lint build clean-test-databases ## Lint, then every test against a throwaway LocalStack + SMTP sink + Postgres
	scripts/with-test-stack.sh cargo test --workspace -- --show-output

clean-test-databases: ## Drop databases left by interrupted test runs (test_*)
	@scripts/drop-test-databases.sh
