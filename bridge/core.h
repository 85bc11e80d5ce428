/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The core: owns the one TPM instance and is the only interface fronts see.
 *
 * Every TPM command and every control operation that touches the TPM goes
 * through one FIFO: one runs at a time, whichever front submitted it, and
 * the state checks (running / stopped) happen when it runs, in one place.
 * Short work runs inline, at once, when nothing is queued: the hot path
 * makes no allocation and no thread hand-off.  Key generation runs on one
 * worker thread, so the loop keeps answering and CANCEL_TPM_CMD works.
 *
 * Completion callbacks run on the loop thread, exactly once per submission,
 * possibly before the submitting call returns; never after core_withdraw()
 * of their arg.
 */
#ifndef VTPM_CORE_H
#define VTPM_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct core;
struct emu;
struct loop;

/* One per front (per front instance): what the core keeps for it. */
struct core_client {
	struct core *core;
	const char *name;		/* "socket", "cuse", "vtpm-proxy": for logs */
	uint8_t locality;		/* of this front's commands; survives INIT/STOP */
	bool inband_locality;		/* honour TPM vendor command SetLocality (0x20001000) */
	/*
	 * A kernel driver (vtpm-proxy): it sends Startup once, when the device
	 * is made, never after a control side's INIT.  The core sends one for
	 * it once the resetter has had its time (core.c, STARTUP_GRACE_MSEC).
	 */
	bool kernel_driver;
};

struct core_config {
	bool reject_locality_4;
	uint32_t config_flags;		/* GET_CONFIG: PTM_CONFIG_FLAG_* */
	/* CMD_SHUTDOWN was answered: the daemon should exit. */
	void (*on_shutdown)(void *arg);
	void *shutdown_arg;
	/* core_start() failed (logged): the daemon cannot serve. */
	void (*on_fatal)(void *arg);
	void *fatal_arg;
};

int core_create(struct core **out, struct loop *loop, struct emu *emu, const struct core_config *cfg);
void core_destroy(struct core *core);

void core_client_init(struct core_client *client, struct core *core, const char *name);

/* ---- TPM commands ---- */

typedef void core_cmd_done(void *arg, const uint8_t *resp, size_t len);

/*
 * Runs a complete command (the front framed it) at the client's locality
 * as it is now, at submission: a later change of the locality does not
 * reach a queued command.
 */
void core_submit(struct core_client *client, const uint8_t *cmd, size_t len, core_cmd_done *done, void *arg);
/* Forgets every submission made with `arg`: queued ones are dropped, a running one's result discarded. */
void core_withdraw(struct core *core, const void *arg);

/* The largest command a front must accept, and the error response for one larger. */
uint32_t core_max_command(const struct core *core);
void core_error_response(const struct core *core, uint32_t rc, uint8_t out[10]);
uint32_t core_command_size_rc(const struct core *core);
/* TPM_RC_FAILURE or TPM_FAIL, by the TPM's version: a response a front cannot deliver. */
uint32_t core_failure_rc(const struct core *core);
/* TPM_RC_LOCALITY or TPM_BAD_LOCALITY, by the TPM's version: a locality refused in band. */
uint32_t core_locality_rc(const struct core *core);

/* ---- control operations (the PTM set, front-neutral) ---- */

struct core_ctrl_req {
	uint32_t op;			/* CMD_* of kmod-headers/ptm.h */
	uint32_t flags;			/* INIT init_flags; GET/SET_STATEBLOB state_flags */
	uint32_t type;			/* GET/SET_STATEBLOB blob type */
	uint32_t offset;		/* GET_STATEBLOB, GET_INFO */
	uint32_t value;			/* SET_BUFFERSIZE size; LOCK_STORAGE retries */
	uint64_t info_flags;		/* GET_INFO */
	uint8_t locality;		/* SET_LOCALITY, RESET_TPMESTABLISHED */
	const uint8_t *data;		/* HASH_DATA data; SET_STATEBLOB chunk */
	size_t len;
	bool first, last;		/* SET_STATEBLOB: this chunk starts / ends the blob */
	size_t max_len;			/* GET_STATEBLOB, GET_INFO: most data bytes per reply */
};

struct core_ctrl_reply {
	uint32_t result;		/* PTM_RES_* or a libtpms code */
	uint64_t caps;			/* GET_CAPABILITY: the core's PTM_CAP_*; a front adds its own */
	bool established;		/* GET_TPMESTABLISHED */
	uint32_t config_flags;		/* GET_CONFIG */
	uint32_t bufsize, bufsize_min, bufsize_max;	/* SET_BUFFERSIZE */
	uint32_t state_flags;		/* GET_STATEBLOB */
	uint32_t totlength;		/* GET_STATEBLOB (the whole blob), GET_INFO (strlen + 1) */
	const uint8_t *data;		/* GET_STATEBLOB, GET_INFO: valid during the callback */
	size_t len;
};

typedef void core_ctrl_done(void *arg, const struct core_ctrl_reply *reply);

/*
 * Runs a control operation for `client`.  GET_CAPABILITY, SET_LOCALITY,
 * GET_CONFIG and CANCEL_TPM_CMD answer at once, even while a command runs;
 * the others are serialized with the TPM commands.
 */
void core_ctrl(struct core_client *client, const struct core_ctrl_req *req, core_ctrl_done *done, void *arg);

/*
 * Prepares the start: libtpms is loaded on the worker thread (and with
 * `init`, for --flags not-need-init, the TPM started and sent Startup of
 * `startup_type` unless < 0) when the first command or control operation
 * that needs it arrives, which then queues behind the start.  Until then
 * an instance costs no libtpms memory, and GET_CAPABILITY is answered at
 * once.  A start that fails calls on_fatal.
 */
int core_start(struct core *core, bool init, int startup_type);
/* Orderly end at process exit (SIGTERM): TPM2_Shutdown unless disabled, then stop. */
void core_stop_tpm(struct core *core);

#endif
