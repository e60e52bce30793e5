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

# The daemon prints nbdinfo and qemu-io lines to try: their packages come
# with it (a non-root user is told which to install, and the daemon runs).
run: all
	-scripts/bootstrap.sh run
	scripts/run-default.sh $(BUILD)

# The test packages may have arrived after $(BUILD) was configured (`make
# run` first): -Dclient_tests=enabled makes meson look for libnbd again,
# and makes its absence an error rather than a skipped test.  A build
# directory set up before the library became installable gets the
# relocatable pkg-config file the install test expects.
check:
	scripts/bootstrap.sh test
	$(MAKE) all
	meson configure $(BUILD) -Dclient_tests=enabled -Dpkgconfig.relocatable=true
	meson test -C $(BUILD) --print-errorlogs

bench:
	bench/run

bench-quick:
	bench/run --quick

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD)
