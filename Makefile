# Thin targets for operators who expect make; every target is one pxebuild
# command (see docs/operations.md). Override SITE for another site file, or
# PXEBUILD to use an installed binary: `make wait PXEBUILD=pxebuild`.
SITE ?= site.toml
OUT ?= dist
PXEBUILD ?= cargo run --quiet --release --
PX = $(PXEBUILD) --site $(SITE)

.PHONY: build check serve untaint install-argo sync-payload wait token test

build:
	$(PX) build --out $(OUT)

check:
	$(PX) check

serve:
	$(PX) serve $(OUT)

wait:
	$(PX) wait --timeout 30m

untaint:
	$(PX) untaint

install-argo:
	$(PX) install-argo

sync-payload:
	$(PX) install-argo --sync-payload

token:
	$(PX) token publish

test:
	scripts/test
