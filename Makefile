# vtpm-bridge -- top-level build.  `make V=1` shows the commands.

PKG_CONFIG ?= pkg-config
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
LIBEXECDIR ?= $(PREFIX)/libexec
# A directory whose `swtpm` is vtpm-bridge: put first in a manager's PATH to switch (docs/drop-in.md).
SWTPM_DIR ?= $(LIBEXECDIR)/vtpm-bridge
# udev and systemd read their own directories, whatever PREFIX is (pkg-config tells where).
UDEVRULESDIR ?= $(or $(shell $(PKG_CONFIG) --variable=udevdir udev 2>/dev/null),/lib/udev)/rules.d
SYSTEMDUNITDIR ?= $(or $(shell $(PKG_CONFIG) --variable=systemdsystemunitdir systemd 2>/dev/null),/lib/systemd/system)
DESTDIR ?=
BUILD ?= build

CC ?= cc
CFLAGS ?= -O2 -g
WARNFLAGS := -std=c11 -Wall -Wextra -Werror -Wshadow -Wmissing-prototypes \
	-Wcast-qual -Wpointer-arith -Wsign-compare -Wstrict-prototypes
override CPPFLAGS += -D_GNU_SOURCE -Ibridge -Iemulator -isystem kmod-headers
DEPFLAGS = -MMD -MP

# libtpms is dlopen()ed (emulator/tpm.c), so only its headers are needed here;
# so is libcrypto (emulator/state-crypt.c, state encryption), the one libtpms loads.
TPMS_CFLAGS := $(shell $(PKG_CONFIG) --cflags libtpms 2>/dev/null) \
	$(shell $(PKG_CONFIG) --cflags libcrypto 2>/dev/null)
# The CUSE front (bridge/front-cuse.c) is on libfuse3's cuse_lowlevel.
FUSE_CFLAGS := $(shell $(PKG_CONFIG) --cflags fuse3 2>/dev/null)
FUSE_LIBS := $(shell $(PKG_CONFIG) --libs fuse3 2>/dev/null)
# Kernel uevents (bridge/uevent.c) arrive on a libnl-3 netlink socket.
NL_CFLAGS := $(shell $(PKG_CONFIG) --cflags libnl-3.0 2>/dev/null)
NL_LIBS := $(shell $(PKG_CONFIG) --libs libnl-3.0 2>/dev/null)
# The seccomp allow-list (bridge/sandbox.c): linked, it is installed at every start anyway.
SECCOMP_LIBS := $(shell $(PKG_CONFIG) --libs libseccomp 2>/dev/null)
LDLIBS += $(FUSE_LIBS) $(NL_LIBS) $(SECCOMP_LIBS) -ldl -lpthread

ifeq ($(V),1)
Q :=
else
Q := @
endif

DAEMON_SRC := $(wildcard bridge/*.c) $(wildcard emulator/*.c)
LIB_SRC := $(filter-out bridge/main.c,$(DAEMON_SRC))
UNIT_SRC := $(wildcard tests/unit/test_*.c)
TOOL_SRC := $(wildcard tests/tools/*.c)

LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
TOOL_BIN := $(TOOL_SRC:tests/tools/%.c=$(BUILD)/tools/%)

all: $(BUILD)/vtpm-bridge $(TOOL_BIN)

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(WARNFLAGS) $(CPPFLAGS) $(TPMS_CFLAGS) $(FUSE_CFLAGS) $(NL_CFLAGS) $(CFLAGS) $(DEPFLAGS) -c -o $@ $<

$(BUILD)/libvtpm.a: $(LIB_OBJ)
	@rm -f $@
	$(Q)ar rcs $@ $^

$(BUILD)/vtpm-bridge: $(BUILD)/bridge/main.o $(BUILD)/libvtpm.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c tests/unit/unit.h $(BUILD)/libvtpm.a
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(WARNFLAGS) $(CPPFLAGS) -Itests/unit $(TPMS_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libvtpm.a $(LDLIBS)

$(BUILD)/tools/%: tests/tools/%.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(WARNFLAGS) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $<

# The fault-injection shim the integration tests LD_PRELOAD (tests/fault/fault.c).
FAULT_LIB := $(BUILD)/tests/libvtpm-fault.so

$(FAULT_LIB): tests/fault/fault.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(WARNFLAGS) -D_GNU_SOURCE $(CFLAGS) -shared -fPIC -o $@ $< -ldl

# test_crypt makes hostile encrypted files with OpenSSL itself (the daemon dlopen()s it).
$(BUILD)/tests/test_crypt: LDLIBS += $(shell $(PKG_CONFIG) --libs libcrypto 2>/dev/null)

unit: unit-bins $(FAULT_LIB)
unit-bins: $(UNIT_BIN)

# The PTM ABI cross-check (tests/abi): our kmod-headers/ptm.h against
# Debian's <swtpm/tpm_ioctl.h> (swtpm-dev) and, for what that header lacks,
# kmod-headers/ptm-abi.tsv (a copy of the spec's table).  Two units, since both headers define the names.
PTM_ABI_TSV ?= kmod-headers/ptm-abi.tsv
ABI_SRC := tests/abi/abi_check.c tests/abi/abi_swtpm.c tests/abi/abi_ours.c
ABI_BIN := $(BUILD)/abi/abi_check

$(ABI_BIN): $(ABI_SRC) tests/abi/abi-items.h kmod-headers/ptm.h
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(WARNFLAGS) $(CPPFLAGS) -Itests/abi $(CFLAGS) $(LDFLAGS) -o $@ $(ABI_SRC)

abi-build: $(ABI_BIN)

abi-check: $(ABI_BIN)
	$(Q)$(ABI_BIN) $(PTM_ABI_TSV)

# Installs the Debian packages the build and the tests need (apt-get; sudo when not root).
deps:
	$(Q)scripts/setup-deps.sh

# Every test: unit tests (plain and ASan+UBSan), integration tests against
# our daemon and Debian's swtpm, the real-kernel VM tests.  Ends with
# "N passed, N failed[, N skipped]".
check: deps
	$(Q)$(MAKE) --no-print-directory all unit abi-build
	$(Q)$(MAKE) --no-print-directory BUILD=$(BUILD)/asan \
		CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
		LDFLAGS="-fsanitize=address,undefined" all unit-bins
	$(Q)BUILD=$(BUILD) tests/run-all.sh

run: deps all
	$(Q)scripts/run.sh

bench: deps all
	$(Q)$(MAKE) --no-print-directory -f bench/bench.mk BUILD=$(BUILD) run

# The udev rules and the systemd unit name the installed binary.
install: $(BUILD)/vtpm-bridge
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5 \
		$(DESTDIR)$(UDEVRULESDIR) $(DESTDIR)$(SYSTEMDUNITDIR)
	install -m 0755 $(BUILD)/vtpm-bridge $(DESTDIR)$(BINDIR)/vtpm-bridge
	install -m 0644 docs/vtpm-bridge.8 $(DESTDIR)$(MANDIR)/man8/vtpm-bridge.8
	install -m 0644 docs/vtpm-bridge.conf.5 $(DESTDIR)$(MANDIR)/man5/vtpm-bridge.conf.5
	sed 's|@BINDIR@|$(BINDIR)|g' udev/70-vtpm-bridge.rules.in > $(DESTDIR)$(UDEVRULESDIR)/70-vtpm-bridge.rules
	sed 's|@BINDIR@|$(BINDIR)|g' udev/vtpm-bridge@.service.in > $(DESTDIR)$(SYSTEMDUNITDIR)/vtpm-bridge@.service
	chmod 0644 $(DESTDIR)$(UDEVRULESDIR)/70-vtpm-bridge.rules $(DESTDIR)$(SYSTEMDUNITDIR)/vtpm-bridge@.service
	install -d $(DESTDIR)$(SWTPM_DIR)
	ln -sfn $(BINDIR)/vtpm-bridge $(DESTDIR)$(SWTPM_DIR)/swtpm

clean:
	rm -rf $(BUILD)

.PHONY: all unit unit-bins abi-build abi-check deps check run bench install clean

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# libFuzzer targets (clang), one per parser of outside bytes; `make fuzz`
# runs each for FUZZ_SECONDS, from tests/fuzz/seeds/NAME where there is one
# (real commands), read-only: new inputs go to $(BUILD)/fuzz/corpus-NAME.
# -close_fd_mask=2: the targets' own log lines (a malformed input each) stay out
# of the log; libFuzzer's reports still reach it.
FUZZ_SECONDS ?= 30
FUZZ_CC ?= clang
FUZZ_FLAGS := -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)
FUZZ_DEPS_fuzz_ctrl_msg := bridge/ctrl-msg.c
FUZZ_DEPS_fuzz_ptm_ioctl := bridge/ptm-ioctl.c
FUZZ_DEPS_fuzz_cli := bridge/cli.c
FUZZ_DEPS_fuzz_conf := bridge/conf.c bridge/cli.c
FUZZ_DEPS_fuzz_instance := bridge/instance.c bridge/file-replace.c bridge/log.c
FUZZ_CRYPT_SRC := emulator/state-format.c emulator/sha256.c emulator/state-crypt.c emulator/dlib.c bridge/log.c -ldl -lpthread
FUZZ_DEPS_fuzz_state := $(FUZZ_CRYPT_SRC)
FUZZ_DEPS_fuzz_crypt := $(FUZZ_CRYPT_SRC)
FUZZ_STATE_SRC := emulator/state-store.c emulator/state-dir.c emulator/state-linear.c emulator/state-format.c emulator/sha256.c \
	emulator/state-crypt.c emulator/dlib.c
FUZZ_DEPS_fuzz_linear := $(FUZZ_STATE_SRC) bridge/log.c -ldl -lpthread
FUZZ_DEPS_fuzz_uevent := bridge/uevent.c bridge/loop.c bridge/log.c $(NL_CFLAGS) $(NL_LIBS)
FUZZ_DEPS_fuzz_tpm_frame := bridge/tpm-frame.c emulator/tpm.c $(FUZZ_STATE_SRC) bridge/log.c \
	$(TPMS_CFLAGS) -ldl

$(BUILD)/fuzz/%: tests/fuzz/%.c tests/fuzz/fuzz.h $(wildcard bridge/*.[ch] emulator/*.[ch])
	@mkdir -p $(@D)
	@$(if $(Q),echo "  FUZZCC  $<")
	$(Q)$(FUZZ_CC) $(WARNFLAGS) $(CPPFLAGS) $(FUZZ_FLAGS) -o $@ $< $(FUZZ_DEPS_$*)

fuzz-build: $(FUZZ_BIN)

fuzz: fuzz-build
	$(Q)for f in $(FUZZ_BIN); do \
		mkdir -p $(BUILD)/fuzz/corpus-$${f##*/}; \
		$$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 -close_fd_mask=2 $(BUILD)/fuzz/corpus-$${f##*/} \
			$$(test -d tests/fuzz/seeds/$${f##*/} && echo tests/fuzz/seeds/$${f##*/}) \
			> $(BUILD)/fuzz/$${f##*/}.log 2>&1 \
		&& echo "PASS fuzz/$${f##*/}: $$(grep -o 'stat::number_of_executed_units: *[0-9]*' $(BUILD)/fuzz/$${f##*/}.log | grep -o '[0-9]*$$') runs in $(FUZZ_SECONDS) s" \
		|| { echo "FAIL fuzz/$${f##*/}: see $(BUILD)/fuzz/$${f##*/}.log"; tail -n 30 $(BUILD)/fuzz/$${f##*/}.log; }; \
	done

.PHONY: fuzz fuzz-build
