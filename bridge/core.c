/* SPDX-License-Identifier: BSD-3-Clause */
#include "core.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <ptm.h>
#include <vtpm_proxy.h>

#include "blob.h"
#include "bytes.h"
#include "log.h"
#include "loop.h"
#include "tpm.h"

#define BLOB_IN_LIMIT		(1u << 20)	/* a TPM 2 permall is a few KiB; refuse more than 1 MiB */
#define LOCK_RETRY_MSEC		10
#define CANCEL_REASSERT_MSEC	2		/* a cancel is repeated this often until its command ends */
#define DEFAULT_MAX_COMMAND	4096		/* libtpms 0.9's buffer, until libtpms says */
/*
 * After a control side's INIT the TPM waits for Startup, which belongs to
 * whoever reset it (the guest's firmware, as on a real platform reset): a
 * Startup from anyone else would make the firmware's fail.  A kernel
 * driver's commands get TPM_RC_INITIALIZE meanwhile, a proper TPM error;
 * once this long has passed with no Startup, the core sends Startup(CLEAR)
 * before the driver's next command, so its device works again.
 */
#define STARTUP_GRACE_MSEC	10000
#define TPM2_RC_INITIALIZE	0x100
#define TPM_INVALID_POSTINIT	0x26

/* Work waiting for the TPM: a command, a serialized control operation, or the start. */
struct core_work {
	struct core_work *next;
	struct core_client *client;
	void *arg;
	core_cmd_done *cmd_done;	/* a TPM command, or */
	core_ctrl_done *ctrl_done;	/* a control operation, or */
	bool start;			/* load libtpms (and start the TPM): core_start() */
	bool init;			/* start: INIT it too */
	int startup_type;		/* start: Startup after INIT, or < 0 */
	uint8_t locality;		/* the client's when it was submitted */
	struct core_ctrl_req req;	/* control: req.data points into buf */
	size_t len;
	uint8_t buf[];
};

/*
 * A LOCK_STORAGE waiting for the lock, retried from a timer.  It holds the
 * head of the FIFO: nothing queued behind it runs before the lock is held
 * or the retries are spent, and nothing else touches the state meanwhile.
 */
struct core_lock_wait {
	core_ctrl_done *done;
	void *arg;
	uint32_t retries;
	bool active;
};

struct core {
	struct loop *loop;
	struct emu *emu;
	struct core_config cfg;
	uint32_t max_command;		/* asked of libtpms once: fronts frame with it */
	struct core_work *head, *tail;	/* the FIFO */
	bool draining;			/* core_drain() is on the stack */
	struct core_work *start;	/* the start job, until the first work that needs libtpms */
	/*
	 * No more work runs: the start failed (on_fatal was called) or
	 * SHUTDOWN was answered.  What comes later is answered with an error.
	 */
	bool closed;

	/* The worker thread for long commands, started on first use. */
	pthread_t worker;
	bool worker_started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct core_work *worker_job;	/* handed to the worker; NULL when idle */
	bool worker_quit;
	const uint8_t *worker_resp;
	size_t worker_resp_len;
	int worker_ret;			/* of a start job */
	struct loop_watch worker_done;	/* eventfd: the worker finished */
	struct core_work *running;	/* the job on the worker, as the loop sees it */

	struct blob_out blob_out;
	uint32_t blob_out_state_flags;	/* GET_STATEBLOB's PTM_STATE_FLAG_ENCRYPTED, for every chunk */
	struct blob_in blob_in;
	char *info;			/* the last GET_INFO string */
	struct core_lock_wait lock_wait;
	struct loop_watch lock_timer;
	/*
	 * libtpms clears its cancel flag when a command starts, so a cancel
	 * that lands between the hand-off and that start would be lost: it is
	 * repeated until the worker's command is over.
	 */
	bool cancel_pending;
	struct loop_watch cancel_timer;
	/* An INIT happened and the core has not started the TPM for a kernel driver since (STARTUP_GRACE_MSEC). */
	bool startup_owed;
	struct timespec reset_at;
};

static bool core_startup_overdue(const struct core *core, const uint8_t *resp, size_t len)
{
	uint32_t not_started = emu_is_tpm2(core->emu) ? TPM2_RC_INITIALIZE : TPM_INVALID_POSTINIT;
	struct timespec now;

	if (!core->startup_owed || len < 10 || get_be32(resp + 6) != not_started)
		return false;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - core->reset_at.tv_sec) * 1000 + (now.tv_nsec - core->reset_at.tv_nsec) / 1000000 >=
	       STARTUP_GRACE_MSEC;
}

/* A TPM command into libtpms, on the loop or the worker (one at a time either way). */
static void core_process(struct core *core, const struct core_client *client, const uint8_t *cmd, size_t len,
			 uint8_t locality, const uint8_t **resp, size_t *resp_len)
{
	uint32_t rc;

	emu_process(core->emu, cmd, len, locality, resp, resp_len);
	if (!client->kernel_driver || !core_startup_overdue(core, *resp, *resp_len))
		return;
	core->startup_owed = false;
	log_warn("no TPM Startup %d s after the reset: sending Startup(CLEAR) for the %s front",
		 STARTUP_GRACE_MSEC / 1000, client->name);
	rc = emu_startup(core->emu, EMU_STARTUP_CLEAR);
	if (rc != 0)
		log_warn("TPM Startup for the %s front returned 0x%x", client->name, rc);
	emu_process(core->emu, cmd, len, locality, resp, resp_len);
}

/* ---- the worker thread ---- */

/* The start job: runs on the worker, so the loop answers while libtpms loads. */
static int core_do_start(struct core *core, const struct core_work *job)
{
	uint32_t rc;
	int ret = emu_load(core->emu);

	if (ret < 0 || !job->init)
		return ret;
	rc = emu_start(core->emu, false);
	if (rc != PTM_RES_SUCCESS)
		return -EIO;
	if (job->startup_type >= 0) {
		rc = emu_startup(core->emu, (enum emu_startup)job->startup_type);
		if (rc != 0)
			log_warn("TPM Startup at start-up returned 0x%x", rc);
	}
	return 0;
}

static void *core_worker_main(void *opaque)
{
	struct core *core = opaque;
	uint64_t one = 1;

	pthread_mutex_lock(&core->lock);
	for (;;) {
		struct core_work *job;

		while (!core->worker_job && !core->worker_quit)
			pthread_cond_wait(&core->cond, &core->lock);
		if (core->worker_quit)
			break;
		job = core->worker_job;
		pthread_mutex_unlock(&core->lock);

		if (job->start)
			core->worker_ret = core_do_start(core, job);
		else
			core_process(core, job->client, job->buf, job->len, job->locality,
				     &core->worker_resp, &core->worker_resp_len);

		pthread_mutex_lock(&core->lock);
		core->worker_job = NULL;
		if (write(core->worker_done.fd, &one, sizeof(one)) < 0)
			log_errno(LOG_ERR, errno, "worker: cannot signal completion");
	}
	pthread_mutex_unlock(&core->lock);
	return NULL;
}

static int core_worker_start(struct core *core)
{
	int ret;

	if (core->worker_started)
		return 0;
	ret = pthread_create(&core->worker, NULL, core_worker_main, core);
	if (ret) {
		log_errno(LOG_ERR, ret, "cannot start the worker thread");
		return -ret;
	}
	core->worker_started = true;
	return 0;
}

static void core_drain(struct core *core);
static struct core_work *core_pop(struct core *core);

/* Answers work that will not run: a command with a TPM error, a control operation with a PTM one. */
static void core_refuse(struct core *core, struct core_work *w)
{
	if (w->cmd_done) {
		uint8_t resp[10];

		core_error_response(core, emu_not_running_rc(core->emu), resp);
		w->cmd_done(w->arg, resp, sizeof(resp));
	} else if (w->ctrl_done) {
		struct core_ctrl_reply r = { .result = PTM_RES_FAIL };

		w->ctrl_done(w->arg, &r);
	}
	free(w);
}

/* No more work runs; everything queued is answered with an error. */
static void core_close(struct core *core)
{
	struct core_work *w;

	core->closed = true;
	while ((w = core_pop(core)))
		core_refuse(core, w);
}

/* The start is over (on the worker or inline): the TPM serves, or nothing does. */
static void core_start_done(struct core *core, struct core_work *job, int ret)
{
	free(job);
	/*
	 * -EIO: libtpms loaded but refused the state (logged, naming it).  The
	 * daemon stays: commands get a TPM error, control requests their
	 * answers, and a CMD_INIT may start the TPM once the state is mended.
	 */
	if (ret == -EIO) {
		log_err("the TPM is not running: commands are answered with an error until a CMD_INIT starts it");
	} else if (ret < 0) {
		core_close(core);
		if (core->cfg.on_fatal)
			core->cfg.on_fatal(core->cfg.fatal_arg);
		return;
	}
	core->max_command = emu_buffer_size(core->emu);
	/* libtpms and OpenSSL free much of what their start allocated: give it back. */
	malloc_trim(0);
}

/* Key generation goes to the worker; a TPM that is not running answers at once. */
static bool core_wants_worker(const struct core *core, const uint8_t *cmd, size_t len)
{
	return emu_running(core->emu) && emu_command_is_long(core->emu, cmd, len);
}

static void core_worker_hand(struct core *core, struct core_work *w)
{
	core->running = w;
	pthread_mutex_lock(&core->lock);
	core->worker_job = w;
	pthread_cond_signal(&core->cond);
	pthread_mutex_unlock(&core->lock);
}

static void core_worker_finished(struct loop_watch *watch, uint32_t events)
{
	struct core *core = (struct core *)((char *)watch - offsetof(struct core, worker_done));
	struct core_work *job = core->running;
	uint64_t count;

	(void)events;
	if (read(watch->fd, &count, sizeof(count)) < 0 || !job)
		return;
	/* The worker is idle again: its response buffer is ours until the next command. */
	core->running = NULL;
	core->cancel_pending = false;
	if (job->start) {
		core_start_done(core, job, core->worker_ret);
	} else {
		if (job->cmd_done)
			job->cmd_done(job->arg, core->worker_resp, core->worker_resp_len);
		free(job);
	}
	core_drain(core);
}

/* ---- running work ---- */

static bool core_inband_locality(struct core_client *client, const uint8_t *cmd, size_t len,
				 uint8_t resp[10])
{
	struct core *core = client->core;

	if (!client->inband_locality || len < 10 || get_be32(cmd + 6) != VTPM_PROXY_SET_LOCALITY)
		return false;
	if (len < VTPM_PROXY_SET_LOCALITY_SIZE) {
		core_error_response(core, emu_is_tpm2(core->emu) ? 0x9a /* TPM_RC_INSUFFICIENT */
								 : 0x19 /* TPM_BAD_PARAM_SIZE */, resp);
		return true;
	}
	if (cmd[10] > 4 || (cmd[10] == 4 && core->cfg.reject_locality_4)) {
		core_error_response(core, core_locality_rc(core), resp);
		return true;
	}
	client->locality = cmd[10];
	core_error_response(core, 0, resp);
	return true;
}

/* Runs a TPM command here and now. */
static void core_run_cmd(struct core *core, struct core_client *client, const uint8_t *cmd, size_t len,
			 uint8_t locality, core_cmd_done *done, void *arg)
{
	const uint8_t *resp;
	size_t resp_len;
	uint8_t small[10];

	if (core_inband_locality(client, cmd, len, small)) {
		done(arg, small, sizeof(small));
		return;
	}
	core_process(core, client, cmd, len, locality, &resp, &resp_len);
	done(arg, resp, resp_len);
}

static void core_exec_ctrl(struct core *core, struct core_client *client,
			   const struct core_ctrl_req *req, core_ctrl_done *done, void *arg);

static struct core_work *core_pop(struct core *core)
{
	struct core_work *w = core->head;

	if (w) {
		core->head = w->next;
		if (!core->head)
			core->tail = NULL;
	}
	return w;
}

/* Runs queued work until the queue is empty or a job went to the worker. */
static void core_drain(struct core *core)
{
	struct core_work *w;

	if (core->draining)
		return;		/* a callback submitted more: the outer drain runs it */
	core->draining = true;
	while (!core->running && !core->lock_wait.active && (w = core_pop(core))) {
		if (core->closed) {
			core_refuse(core, w);
			continue;
		} else if (w->start && core_worker_start(core) == 0) {
			core_worker_hand(core, w);
			continue;
		} else if (w->start) {
			/* No thread to be had (EAGAIN under a pids limit): load here instead. */
			core_start_done(core, w, core_do_start(core, w));
			continue;
		} else if (w->ctrl_done) {
			core_exec_ctrl(core, w->client, &w->req, w->ctrl_done, w->arg);
		} else if (core_wants_worker(core, w->buf, w->len) && core_worker_start(core) == 0) {
			core_worker_hand(core, w);
			continue;
		} else {
			core_run_cmd(core, w->client, w->buf, w->len, w->locality, w->cmd_done, w->arg);
		}
		free(w);
	}
	core->draining = false;
}

static bool core_idle(const struct core *core)
{
	return !core->running && !core->lock_wait.active && !core->head && !core->draining;
}

static struct core_work *core_work_new(struct core_client *client, const uint8_t *data, size_t len, void *arg)
{
	struct core_work *w = malloc(sizeof(*w) + len);

	if (!w)
		return NULL;
	memset(w, 0, sizeof(*w));
	w->client = client;
	w->arg = arg;
	w->len = len;
	if (len)
		memcpy(w->buf, data, len);
	return w;
}

static void core_enqueue(struct core *core, struct core_work *w)
{
	if (core->tail)
		core->tail->next = w;
	else
		core->head = w;
	core->tail = w;
	core_drain(core);
}

/* The first work that needs libtpms sets the start going, ahead of itself. */
static void core_need_tpm(struct core *core)
{
	struct core_work *start = core->start;

	if (!start)
		return;
	core->start = NULL;
	core_enqueue(core, start);
}

void core_submit(struct core_client *client, const uint8_t *cmd, size_t len, core_cmd_done *done, void *arg)
{
	struct core *core = client->core;
	struct core_work *w;

	core_need_tpm(core);
	/* The hot path: nothing ahead of it and a short command, so no copy and no thread. */
	if (core_idle(core) && !core->closed && !core_wants_worker(core, cmd, len)) {
		core->draining = true;
		core_run_cmd(core, client, cmd, len, client->locality, done, arg);
		core->draining = false;
		core_drain(core);
		return;
	}
	w = core_work_new(client, cmd, len, arg);
	if (!w) {
		uint8_t resp[10];

		log_err("out of memory queueing a TPM command");
		core_error_response(core, emu_not_running_rc(core->emu), resp);
		done(arg, resp, sizeof(resp));
		return;
	}
	w->cmd_done = done;
	w->locality = client->locality;
	if (core->closed)
		core_refuse(core, w);
	else
		core_enqueue(core, w);
}

void core_withdraw(struct core *core, const void *arg)
{
	struct core_work **p = &core->head, *w;

	core->tail = NULL;
	while ((w = *p)) {
		if (w->arg == arg) {
			*p = w->next;
			free(w);
			continue;
		}
		core->tail = w;
		p = &w->next;
	}
	if (core->running && core->running->arg == arg) {
		core->running->cmd_done = NULL;
		core->running->arg = NULL;
	}
	if (core->lock_wait.active && core->lock_wait.arg == arg) {
		/* Its asker is gone: stop waiting, let the FIFO move on. */
		core->lock_wait.active = false;
		core_drain(core);
	}
}

/* ---- control operations ---- */

static uint32_t core_caps(const struct core *core)
{
	(void)core;
	return PTM_CAP_INIT | PTM_CAP_SHUTDOWN | PTM_CAP_GET_TPMESTABLISHED | PTM_CAP_SET_LOCALITY |
	       PTM_CAP_HASHING | PTM_CAP_CANCEL_TPM_CMD | PTM_CAP_STORE_VOLATILE |
	       PTM_CAP_RESET_TPMESTABLISHED | PTM_CAP_GET_STATEBLOB | PTM_CAP_SET_STATEBLOB |
	       PTM_CAP_STOP | PTM_CAP_GET_CONFIG | PTM_CAP_SET_BUFFERSIZE | PTM_CAP_GET_INFO |
	       PTM_CAP_LOCK_STORAGE;
}

/* Which state an operation needs: the one table of the spec's section 6. */
static uint32_t core_check_state(const struct core *core, const struct core_ctrl_req *req)
{
	bool running = emu_running(core->emu);

	switch (req->op) {
	case CMD_GET_TPMESTABLISHED:
	case CMD_RESET_TPMESTABLISHED:
	case CMD_HASH_START:
	case CMD_HASH_DATA:
	case CMD_HASH_END:
	case CMD_CANCEL_TPM_CMD:
	case CMD_STORE_VOLATILE:
	case CMD_GET_STATEBLOB:
		return running ? PTM_RES_SUCCESS : PTM_RES_BAD_ORDINAL;
	case CMD_SET_STATEBLOB:
		return running ? PTM_RES_BAD_ORDINAL : PTM_RES_SUCCESS;
	case CMD_SET_BUFFERSIZE:
		return running && req->value ? PTM_RES_BAD_ORDINAL : PTM_RES_SUCCESS;
	default:
		return PTM_RES_SUCCESS;
	}
}

static void core_get_stateblob(struct core *core, const struct core_ctrl_req *req, struct core_ctrl_reply *r)
{
	const uint8_t *p;
	size_t n;

	/* Offset 0 starts a transfer: fetch afresh (swtpm's CUSE cache goes stale here). */
	if (req->offset == 0 || !blob_out_has(&core->blob_out, req->type, req->flags)) {
		uint8_t *blob;
		size_t len;

		r->result = emu_get_blob(core->emu, req->type, req->flags, &blob, &len, &core->blob_out_state_flags);
		if (r->result != PTM_RES_SUCCESS) {
			blob_out_clear(&core->blob_out);
			return;
		}
		blob_out_set(&core->blob_out, req->type, req->flags, blob, len);
	}
	blob_out_chunk(&core->blob_out, req->offset, req->max_len, &p, &n);
	r->totlength = (uint32_t)core->blob_out.len;
	r->state_flags = core->blob_out_state_flags;
	r->data = p;
	r->len = n;
}

static void core_set_stateblob(struct core *core, const struct core_ctrl_req *req, struct core_ctrl_reply *r)
{
	int ret;

	ret = blob_in_append(&core->blob_in, req->type, req->flags, req->first, req->data, req->len,
			     BLOB_IN_LIMIT);
	if (ret < 0) {
		r->result = PTM_RES_FAIL;
		return;
	}
	if (!req->last)
		return;
	r->result = emu_set_blob(core->emu, core->blob_in.type, core->blob_in.flags,
				 core->blob_in.data, core->blob_in.len);
	blob_in_clear(&core->blob_in);
}

static void core_get_info(struct core *core, const struct core_ctrl_req *req, struct core_ctrl_reply *r)
{
	size_t slen, n;

	free(core->info);
	core->info = emu_get_info(core->emu, req->info_flags);
	if (!core->info) {
		r->result = PTM_RES_SIZE;
		return;
	}
	slen = strlen(core->info);
	if (req->offset >= slen) {
		r->result = PTM_RES_BAD_PARAMETER;
		return;
	}
	n = slen + 1 - req->offset;
	r->totlength = (uint32_t)(slen + 1);
	r->data = (const uint8_t *)core->info + req->offset;
	r->len = n < req->max_len ? n : req->max_len;
}

static void core_lock_retry(struct loop_watch *timer, uint32_t events)
{
	struct core *core = (struct core *)((char *)timer - offsetof(struct core, lock_timer));
	struct core_lock_wait *lw = &core->lock_wait;
	struct core_ctrl_reply r = { 0 };
	uint64_t expirations;

	(void)events;
	if (read(timer->fd, &expirations, sizeof(expirations)) < 0 || !lw->active)
		return;
	r.result = emu_lock_storage(core->emu);
	if (r.result != PTM_RES_SUCCESS && lw->retries > 0) {
		lw->retries--;
		if (loop_timer_arm(timer, LOCK_RETRY_MSEC) == 0)
			return;
		log_err("LOCK_STORAGE: cannot arm the retry timer; giving up");
	}
	lw->active = false;
	lw->done(lw->arg, &r);
	core_drain(core);
}

/* LOCK_STORAGE: true when the reply was deferred to the retry timer. */
static bool core_lock_storage(struct core *core, const struct core_ctrl_req *req, struct core_ctrl_reply *r,
			      core_ctrl_done *done, void *arg)
{
	r->result = emu_lock_storage(core->emu);
	if (r->result == PTM_RES_SUCCESS || req->value == 0)
		return false;
	if ((core->lock_timer.fd < 0 && loop_timer_create(core->loop, &core->lock_timer, core_lock_retry) < 0) ||
	    loop_timer_arm(&core->lock_timer, LOCK_RETRY_MSEC) < 0) {
		log_err("LOCK_STORAGE: cannot arm the retry timer; answering at once");
		return false;
	}
	core->lock_wait = (struct core_lock_wait){ .done = done, .arg = arg, .retries = req->value - 1, .active = true };
	return true;
}

static void core_exec_ctrl(struct core *core, struct core_client *client,
			   const struct core_ctrl_req *req, core_ctrl_done *done, void *arg)
{
	struct core_ctrl_reply r = { 0 };
	bool shutdown = false;

	(void)client;
	r.result = core_check_state(core, req);
	if (r.result != PTM_RES_SUCCESS)
		goto reply;

	switch (req->op) {
	case CMD_INIT:
		blob_out_clear(&core->blob_out);
		r.result = emu_start(core->emu, req->flags & PTM_INIT_FLAG_DELETE_VOLATILE);
		core->startup_owed = r.result == PTM_RES_SUCCESS;
		clock_gettime(CLOCK_MONOTONIC, &core->reset_at);
		break;
	case CMD_SHUTDOWN:
		emu_stop(core->emu);
		shutdown = true;
		break;
	case CMD_STOP:
		emu_stop(core->emu);
		blob_out_clear(&core->blob_out);
		break;
	case CMD_GET_TPMESTABLISHED:
		r.result = emu_get_established(core->emu, &r.established);
		break;
	case CMD_RESET_TPMESTABLISHED:
		r.result = req->locality > 4 ? PTM_RES_BAD_LOCALITY
					     : emu_reset_established(core->emu, req->locality);
		break;
	case CMD_HASH_START:
		r.result = emu_hash_start(core->emu);
		break;
	case CMD_HASH_DATA:
		r.result = emu_hash_data(core->emu, req->data, req->len);
		break;
	case CMD_HASH_END:
		r.result = emu_hash_end(core->emu);
		break;
	case CMD_CANCEL_TPM_CMD:
		break;		/* nothing runs that could be cancelled */
	case CMD_STORE_VOLATILE:
		r.result = emu_store_volatile(core->emu);
		break;
	case CMD_GET_STATEBLOB:
		core_get_stateblob(core, req, &r);
		break;
	case CMD_SET_STATEBLOB:
		core_set_stateblob(core, req, &r);
		break;
	case CMD_SET_BUFFERSIZE:
		r.result = emu_set_buffersize(core->emu, req->value, &r.bufsize, &r.bufsize_min, &r.bufsize_max);
		break;
	case CMD_GET_INFO:
		core_get_info(core, req, &r);
		break;
	case CMD_LOCK_STORAGE:
		if (core_lock_storage(core, req, &r, done, arg))
			return;
		break;
	default:
		r.result = PTM_RES_BAD_ORDINAL;
		break;
	}
reply:
	if (shutdown)
		core_close(core);	/* nothing after SHUTDOWN runs, not even what was queued */
	done(arg, &r);
	if (shutdown && core->cfg.on_shutdown)
		core->cfg.on_shutdown(core->cfg.shutdown_arg);
}

static void core_cancel_reassert(struct loop_watch *timer, uint32_t events)
{
	struct core *core = (struct core *)((char *)timer - offsetof(struct core, cancel_timer));
	uint64_t expirations;

	(void)events;
	if (read(timer->fd, &expirations, sizeof(expirations)) < 0 || !core->cancel_pending)
		return;
	emu_cancel(core->emu);
	loop_timer_arm(timer, CANCEL_REASSERT_MSEC);
}

/* Cancels the worker's command, and keeps cancelling it until it is over. */
static void core_cancel_running(struct core *core)
{
	emu_cancel(core->emu);
	if ((core->cancel_timer.fd < 0 &&
	     loop_timer_create(core->loop, &core->cancel_timer, core_cancel_reassert) < 0) ||
	    loop_timer_arm(&core->cancel_timer, CANCEL_REASSERT_MSEC) < 0) {
		log_warn("cannot arm the cancel timer: a cancel may be lost");
		return;
	}
	core->cancel_pending = true;
}

/* Operations that never wait for the TPM. */
static bool core_ctrl_now(struct core_client *client, const struct core_ctrl_req *req, struct core_ctrl_reply *r)
{
	struct core *core = client->core;

	switch (req->op) {
	case CMD_GET_CAPABILITY:
		r->caps = core_caps(core);
		return true;
	case CMD_GET_CONFIG:
		r->config_flags = core->cfg.config_flags;
		return true;
	case CMD_SET_LOCALITY:
		if (req->locality > 4 || (req->locality == 4 && core->cfg.reject_locality_4))
			r->result = PTM_RES_BAD_LOCALITY;
		else
			client->locality = req->locality;
		return true;
	case CMD_CANCEL_TPM_CMD:
		/*
		 * Only a command on the worker can be cancelled, and it must be at
		 * once; otherwise cancel waits its turn, so that it sees the TPM
		 * state the start or an INIT queued before it leaves.
		 */
		if (!core->running || core->running->start)
			return false;
		if (core->running->client == client)
			core_cancel_running(core);
		return true;
	default:
		return false;
	}
}

void core_ctrl(struct core_client *client, const struct core_ctrl_req *req, core_ctrl_done *done, void *arg)
{
	struct core *core = client->core;
	struct core_ctrl_reply r = { 0 };
	struct core_work *w;

	if (core_ctrl_now(client, req, &r)) {
		done(arg, &r);
		return;
	}
	core_need_tpm(core);
	if (core->closed) {
		r.result = PTM_RES_FAIL;
		done(arg, &r);
		return;
	}
	if (core_idle(core)) {
		core->draining = true;
		core_exec_ctrl(core, client, req, done, arg);
		core->draining = false;
		core_drain(core);
		return;
	}
	w = core_work_new(client, req->data, req->len, arg);
	if (!w) {
		r.result = PTM_RES_FAIL;
		done(arg, &r);
		return;
	}
	w->ctrl_done = done;
	w->req = *req;
	w->req.data = w->buf;
	core_enqueue(core, w);
}

/* ---- instance ---- */

int core_create(struct core **out, struct loop *loop, struct emu *emu, const struct core_config *cfg)
{
	struct core *core = calloc(1, sizeof(*core));
	int ret;

	if (!core)
		return -ENOMEM;
	core->loop = loop;
	core->emu = emu;
	core->cfg = *cfg;
	core->max_command = DEFAULT_MAX_COMMAND;
	core->lock_timer.fd = -1;
	core->cancel_timer.fd = -1;
	pthread_mutex_init(&core->lock, NULL);
	pthread_cond_init(&core->cond, NULL);
	core->worker_done.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (core->worker_done.fd < 0) {
		ret = -errno;
		goto free_core;
	}
	core->worker_done.fn = core_worker_finished;
	ret = loop_watch(loop, &core->worker_done, EPOLLIN);
	if (ret < 0)
		goto close_eventfd;
	*out = core;
	return 0;

close_eventfd:
	close(core->worker_done.fd);
free_core:
	pthread_cond_destroy(&core->cond);
	pthread_mutex_destroy(&core->lock);
	free(core);
	return ret;
}

void core_destroy(struct core *core)
{
	struct core_work *w;

	if (!core)
		return;
	if (core->worker_started) {
		/* A running key generation is cancelled rather than waited for (a start is short). */
		if (core->running && !core->running->start)
			emu_cancel(core->emu);
		pthread_mutex_lock(&core->lock);
		core->worker_quit = true;
		pthread_cond_signal(&core->cond);
		pthread_mutex_unlock(&core->lock);
		pthread_join(core->worker, NULL);
		free(core->running);
	}
	while ((w = core_pop(core)))
		free(w);
	free(core->start);
	loop_timer_destroy(core->loop, &core->lock_timer);
	loop_timer_destroy(core->loop, &core->cancel_timer);
	loop_unwatch(core->loop, &core->worker_done);
	close(core->worker_done.fd);
	blob_out_clear(&core->blob_out);
	blob_in_clear(&core->blob_in);
	free(core->info);
	pthread_cond_destroy(&core->cond);
	pthread_mutex_destroy(&core->lock);
	free(core);
}

void core_client_init(struct core_client *client, struct core *core, const char *name)
{
	memset(client, 0, sizeof(*client));
	client->core = core;
	client->name = name;
}

uint32_t core_max_command(const struct core *core)
{
	return core->max_command;
}

void core_error_response(const struct core *core, uint32_t rc, uint8_t out[10])
{
	emu_error_response(core->emu, rc, out);
}

uint32_t core_command_size_rc(const struct core *core)
{
	return emu_command_size_rc(core->emu);
}

uint32_t core_failure_rc(const struct core *core)
{
	return emu_not_running_rc(core->emu);
}

uint32_t core_locality_rc(const struct core *core)
{
	return emu_is_tpm2(core->emu) ? 0x907 /* TPM_RC_LOCALITY */ : PTM_RES_BAD_LOCALITY;
}

int core_start(struct core *core, bool init, int startup_type)
{
	struct core_work *w = core_work_new(NULL, NULL, 0, NULL);

	if (!w)
		return -ENOMEM;
	w->start = true;
	w->init = init;
	w->startup_type = startup_type;
	core->start = w;
	return 0;
}

void core_stop_tpm(struct core *core)
{
	if (core->running)
		return;		/* a key generation is on the worker: core_destroy cancels it */
	emu_stop(core->emu);
}
