# One entry point per task; `make help` lists them.
SHELL := /usr/bin/env bash
.DEFAULT_GOAL := help

.PHONY: help dev test lint build chaos clean-test-databases

# Test builds compile the chaos suite's crash points in (they do nothing unless
# CHAOS_CRASH_AT is set); production builds (the Dockerfiles) never do.
CHAOS_FEATURES := --features payment-service/chaos,notification-service/chaos

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

dev: ## Run the whole system locally: LocalStack, an SMTP server with a web UI, both services
	cargo build --workspace
	scripts/dev.sh

build: ## Build every crate and test (debug, with the chaos crash points)
	cargo build --workspace --all-targets $(CHAOS_FEATURES)

lint: ## Formatting and clippy, warnings as errors
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings
	cargo clippy --workspace --all-targets $(CHAOS_FEATURES) -- -D warnings

test: lint lint-deploy build clean-test-databases ## Lint, then every test against a throwaway LocalStack + SMTP sink + Postgres
	scripts/with-test-stack.sh cargo test --workspace $(CHAOS_FEATURES) -- --show-output

chaos: build ## The full chaos suite (over 10,000 charges, Postgres restarts included); writes docs/RELIABILITY.md
	CHAOS_SCALE=large CHAOS_PG_RESTART=1 CHAOS_REPORT=$(CURDIR)/target/chaos-table.md \
	  scripts/with-test-stack.sh cargo test --workspace $(CHAOS_FEATURES) --test chaos -- --nocapture
	scripts/write-reliability-report.sh target/chaos-table.md docs/RELIABILITY.md

clean-test-databases: ## Drop databases left by interrupted test runs (test_*)
	@scripts/drop-test-databases.sh

.PHONY: lint-deploy up down

lint-deploy: build ## Check docker-compose.yml, the Dockerfiles and init scripts without Docker (~30 s)
	scripts/lint-deploy.sh

up: ## The whole system in containers: docker compose up --build (needs Docker)
	docker compose up --build

down: ## Stop and remove those containers (the Postgres volume stays; add -v by hand to drop it)
	docker compose down --remove-orphans

.PHONY: bench bench-smoke

bench: ## Benchmark against the parts' limits (release build, ~20 min); writes docs/PERFORMANCE.md
	scripts/bench.sh

bench-smoke: ## Every bench measurement for a second each on the debug build (CI; no timing asserts)
	scripts/bench.sh --smoke
