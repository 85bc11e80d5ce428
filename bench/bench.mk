# bench/bench.mk - builds the benchmark tools and runs the benchmark.
# The top-level `make bench` calls `$(MAKE) -f bench/bench.mk BUILD=... run`.
#   run       tools, then bench/run.py (BENCH_QUICK=1: the ~1 minute version)
#   profile   tools, then bench/profile.py (callgrind, perf, strace, smaps: ours vs swtpm)
#   tools-cc  build the tools with gcc and with clang (warnings are errors)
BUILD ?= build
CC ?= cc
CFLAGS ?= -O2 -g
PKG_CONFIG ?= pkg-config
PYTHON ?= $(firstword $(wildcard /usr/bin/python3) python3)

ifeq ($(V),1)
Q :=
else
Q := @
endif

BENCH_WARN := -std=c11 -Wall -Wextra -Werror -Wshadow -Wmissing-prototypes \
	-Wcast-qual -Wpointer-arith -Wsign-compare -Wstrict-prototypes
TPMS_CFLAGS := $(shell $(PKG_CONFIG) --cflags libtpms 2>/dev/null)
TPMS_LIBS := $(or $(shell $(PKG_CONFIG) --libs libtpms 2>/dev/null),-ltpms)

BENCH_DIR := $(BUILD)/bench
BENCH_TOOLS := tpmfloor echosrv rtt start many blob
BENCH_BIN := $(BENCH_TOOLS:%=$(BENCH_DIR)/%)

# Static floors: the libtpms tools linked non-PIE against libtpms.a and
# libcrypto.a (libc stays shared), when the archives are installed: no
# relocations of libcrypto at exec, its tables stay clean shared pages.
STATIC_A := $(foreach a,libtpms.a libcrypto.a,$(wildcard $(shell $(CC) -print-file-name=$(a))))
ifeq ($(words $(STATIC_A)),2)
BENCH_BIN += $(BENCH_DIR)/tpmfloor-static $(BENCH_DIR)/echosrv-static
endif

tools: $(BENCH_BIN)

$(BENCH_DIR)/%-static: bench/%.c bench/common.c bench/common.h bench/tpmmem.c bench/tpmmem.h bench/bench.mk
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(BENCH_WARN) -D_GNU_SOURCE $(TPMS_CFLAGS) $(CFLAGS) $(LDFLAGS) -no-pie \
		-o $@ bench/$*.c bench/common.c bench/tpmmem.c \
		-Wl,-Bstatic -ltpms -lcrypto -Wl,-Bdynamic -lpthread -ldl

# the tools that run libtpms themselves
BENCH_TPMS := tpmfloor echosrv
tpms = $(if $(filter $(BENCH_TPMS),$(1)),$(2))

$(BENCH_DIR)/%: bench/%.c bench/common.c bench/common.h bench/tpmmem.c bench/tpmmem.h bench/bench.mk
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(BENCH_WARN) -D_GNU_SOURCE $(call tpms,$*,$(TPMS_CFLAGS)) $(CFLAGS) $(LDFLAGS) \
		-o $@ bench/$*.c bench/common.c $(call tpms,$*,bench/tpmmem.c $(TPMS_LIBS))

run: tools
	$(Q)$(PYTHON) bench/run.py --build $(BUILD)

profile: tools
	$(Q)$(PYTHON) bench/profile.py --build $(BUILD)

tools-cc:
	$(Q)$(MAKE) --no-print-directory -f bench/bench.mk BUILD=$(BUILD)/bench-gcc CC=gcc tools
	$(Q)$(MAKE) --no-print-directory -f bench/bench.mk BUILD=$(BUILD)/bench-clang CC=clang tools

.PHONY: tools run profile tools-cc
