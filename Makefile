# Thin wrapper over meson/ninja.  Each target installs missing Debian
# packages first (scripts/bootstrap.sh, silent when nothing is missing).
BUILD ?= build
MESON_OPTS ?=

.PHONY: all run check bootstrap bench bench-quick clean format

all: $(BUILD)/build.ninja
	ninja -C $(BUILD)

$(BUILD)/build.ninja:
	scripts/bootstrap.sh build
	meson setup $(BUILD) $(MESON_OPTS)

run: all
	scripts/run-default.sh $(BUILD)

check:
	scripts/bootstrap.sh test
	$(MAKE) all
	meson test -C $(BUILD) --print-errorlogs

bench:
	bench/run

bench-quick:
	bench/run --quick

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD)
