# Set-up and entry points that work on a machine with only Node/npm: Bun is installed from npm into
# .tools/ (git-ignored) when `bun --version` is not BUN_VERSION, and put first on PATH here.
#   make demo    make test    make build
# BUN_VERSION is the project's one pin of Bun (.ci/run runs `make test`; keep the Dockerfile's
# oven/bun tag and the README in step when changing it).

BUN_VERSION := 1.4.4
TOOLS_DIR   := $(CURDIR)/.tools
export PATH := $(TOOLS_DIR)/node_modules/.bin:$(PATH)

.DEFAULT_GOAL := help
.PHONY: help bun deps demo test build

help:
	@echo "make demo     install Bun $(BUN_VERSION) (into .tools/ if needed) and dependencies, run bun run demo"
	@echo "make test     the same set-up, then bun run test"
	@echo "make build    the same set-up, then bun run build"
	@echo "make deps     the set-up only: Bun and bun install --frozen-lockfile"

bun:
	@bash scripts/ensure_bun.sh "$(BUN_VERSION)" "$(TOOLS_DIR)"
	@echo "make: bun $$(bun --version) ($$(command -v bun))"

deps: bun
	bun install --frozen-lockfile

demo: deps
	bun run demo

test: deps
	bun run test

build: deps
	bun run build
