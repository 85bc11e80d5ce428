/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * `vtpm-bridge state verify|inspect PATH`: an operator's look at a state
 * directory or linear state file, for health checks and backups.  It reads
 * and changes nothing (no lock is taken, so it also works beside a running
 * daemon), and needs no key and no libtpms.
 */
#include "state-cmd.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "log.h"
#include "state.h"

static void state_cmd_usage(FILE *out)
{
	fprintf(out,
		"usage: vtpm-bridge state verify PATH\n"
		"       vtpm-bridge state inspect PATH\n"
		"PATH is a state directory (--tpmstate dir=), or a linear state file or block\n"
		"device (backend-uri=file://), also given as file://PATH.\n"
		"verify: exit 0 if every state present is intact, 1 if one is damaged or\n"
		"unreadable, 2 on bad usage; problems go to stdout, one line each.\n"
		"inspect: a report of every file: size, format, flags, integrity, the lock.\n");
}

/* "lock:\t1: OFDLCK ADVISORY  WRITE -1 fe:00:1234 0 EOF" in /proc/PID/fdinfo: an OFD lock shows no pid in /proc/locks. */
static pid_t state_cmd_fdinfo_holder(const char *dev_ino)
{
	DIR *proc = opendir("/proc");
	struct dirent *p;
	pid_t found = 0;

	if (!proc)
		return 0;
	while (!found && (p = readdir(proc))) {
		char path[PATH_MAX];
		DIR *fds;
		struct dirent *f;

		if (!isdigit((unsigned char)p->d_name[0]))
			continue;
		snprintf(path, sizeof(path), "/proc/%s/fdinfo", p->d_name);
		fds = opendir(path);
		if (!fds)
			continue;
		while (!found && (f = readdir(fds))) {
			char line[256];
			FILE *fi;

			if (f->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "/proc/%s/fdinfo/%s", p->d_name, f->d_name);
			fi = fopen(path, "re");
			if (!fi)
				continue;
			while (fgets(line, sizeof(line), fi)) {
				if (!strncmp(line, "lock:", 5) && strstr(line, dev_ino)) {
					found = (pid_t)atol(p->d_name);
					break;
				}
			}
			fclose(fi);
		}
		closedir(fds);
	}
	closedir(proc);
	return found;
}

/* Who holds a lock on path: >0 a pid, 0 nobody, -1 held but the holder is unknown. */
static pid_t state_cmd_lock_holder(const char *path)
{
	char dev_ino[64], line[256];
	struct stat st;
	pid_t holder = 0;
	FILE *locks;

	if (stat(path, &st) < 0)
		return 0;
	snprintf(dev_ino, sizeof(dev_ino), " %02x:%02x:%llu ", major(st.st_dev), minor(st.st_dev),
		 (unsigned long long)st.st_ino);
	locks = fopen("/proc/locks", "re");
	if (!locks)
		return 0;
	while (fgets(line, sizeof(line), locks)) {
		long pid;
		char *p = strstr(line, dev_ino);

		if (!p || strstr(line, "->"))	/* "->" marks a waiter, not a holder */
			continue;
		/* the pid is the word before dev:ino */
		while (p > line && p[-1] == ' ')
			p--;
		while (p > line && p[-1] != ' ')
			p--;
		pid = strtol(p, NULL, 10);
		holder = pid > 0 ? (pid_t)pid : state_cmd_fdinfo_holder(dev_ino);
		if (!holder)
			holder = -1;
		break;
	}
	fclose(locks);
	return holder;
}

static void state_cmd_print_lock(const char *lock_path)
{
	pid_t holder = state_cmd_lock_holder(lock_path);
	char comm_path[64], comm[64] = "?";
	FILE *f;

	if (holder == 0) {
		printf("  lock: free\n");
		return;
	}
	if (holder < 0) {
		printf("  lock: held (holder not visible here)\n");
		return;
	}
	snprintf(comm_path, sizeof(comm_path), "/proc/%ld/comm", (long)holder);
	f = fopen(comm_path, "re");
	if (f) {
		if (fgets(comm, sizeof(comm), f))
			comm[strcspn(comm, "\n")] = '\0';
		fclose(f);
	}
	printf("  lock: held by pid %ld (%s)\n", (long)holder, comm);
}

/* What the libtpms blob inside says it is (spec 6). */
static const char *state_cmd_payload_kind(const struct state_file_report *rep)
{
	switch (rep->libtpms_magic) {
	case 0xAB364723u:
		return "TPM 2.0 permanent state";
	case 0x45637889u:
		return "TPM 2.0 volatile state";
	default:
		return "libtpms state (TPM 1.2, or a format not known here)";
	}
}

static void state_cmd_print_file(const char *label, const char *suffix, int ret, size_t size,
				 const struct state_file_report *rep)
{
	char name[STATE_LABEL_MAX + 8];

	snprintf(name, sizeof(name), "%s%s", label, suffix);
	if (ret == -ENOENT) {
		printf("  %-26s absent\n", name);
		return;
	}
	if (ret != 0 && ret != -EBADMSG) {
		printf("  %-26s UNREADABLE: %s\n", name, strerror(-ret));
		return;
	}
	printf("  %-26s %zu bytes", name, size);
	if (ret == -EBADMSG) {
		printf(", DAMAGED: %s", rep->problem);
		if (rep->at != SIZE_MAX)
			printf(" (at byte %zu)", rep->at);
		printf("\n");
		return;
	}
	printf(", swtpm format, flags 0x%04x, %s", rep->flags,
	       rep->encrypted ? ((rep->flags & 0x08) ? "encrypted (AES-256)" : "encrypted (AES-128)") : "plain");
	printf(", integrity: %s", rep->tagged ? "SHA-256 tag matches" :
	       rep->encrypted ? "no tag (written by swtpm); HMAC checked only with the key" :
				"no tag (written by swtpm); structure checked only");
	if (!rep->encrypted)
		printf(", %s v%u, %zu bytes", state_cmd_payload_kind(rep), rep->libtpms_version, rep->payload_len);
	printf("\n");
}

/* One line per problem, for verify. */
static void state_cmd_print_problem(const char *label, const char *suffix, int ret, const struct state_file_report *rep)
{
	if (ret == -EBADMSG)
		printf("%s%s: damaged: %s\n", label, suffix, rep->problem);
	else if (ret && ret != -ENOENT)
		printf("%s%s: unreadable: %s\n", label, suffix, strerror(-ret));
}

/* A directory is the directory backend; anything else a linear file. */
static int state_cmd_open(const char *arg, struct state_store **st, bool *dir, char **lock_path)
{
	struct state_config cfg = { .mode = 0640, .tpm2 = true };
	char *path;
	struct stat sb;
	int ret;

	if (!strncmp(arg, "file://", 7))
		arg += 7;
	path = realpath(arg, NULL);
	if (!path || stat(path, &sb) < 0) {
		fprintf(stderr, "vtpm-bridge: state: %s: %s\n", arg, strerror(errno));
		free(path);
		return -1;
	}
	*dir = S_ISDIR(sb.st_mode);
	cfg.backend = *dir ? STATE_BACKEND_DIR : STATE_BACKEND_FILE;
	cfg.path = path;
	if (*dir) {
		char probe[PATH_MAX];

		/* TPM 1.2 names when there is no TPM 2.0 permall but a 1.2 one. */
		snprintf(probe, sizeof(probe), "%s/tpm2-00.permall", path);
		if (access(probe, F_OK) < 0) {
			snprintf(probe, sizeof(probe), "%s/tpm-00.permall", path);
			cfg.tpm2 = access(probe, F_OK) < 0;
		}
	}
	ret = state_store_open(st, &cfg);
	if (ret == 0 && asprintf(lock_path, *dir ? "%s/.lock" : "%s", path) < 0)
		ret = -ENOMEM;
	free(path);
	if (ret < 0) {
		fprintf(stderr, "vtpm-bridge: state: %s: %s\n", arg, strerror(-ret));
		return -1;
	}
	return 0;
}

int state_cmd_main(int argc, char **argv)
{
	struct state_verdict v[STATE_LINEAR_SLOTS];
	struct state_store *st = NULL;
	char *lock_path = NULL, label[STATE_LABEL_MAX];
	bool inspect, dir, bad = false, any = false;

	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		state_cmd_usage(stdout);
		return 0;
	}
	if (argc != 3 || (strcmp(argv[1], "verify") && strcmp(argv[1], "inspect"))) {
		state_cmd_usage(stderr);
		return 2;
	}
	inspect = !strcmp(argv[1], "inspect");
	/* The storage layer's own messages (a file that is not regular, too big) go to stderr. */
	log_setup(STDERR_FILENO, LOG_ERR);
	if (state_cmd_open(argv[2], &st, &dir, &lock_path) < 0)
		return 2;
	state_verify(st, v);
	if (inspect) {
		printf("%s\n", state_store_name(st));
		state_cmd_print_lock(lock_path);
	}
	for (int i = 0; i < STATE_LINEAR_SLOTS; i++) {
		state_label(st, v[i].kind, label, sizeof(label));
		any |= v[i].ret != -ENOENT;
		bad |= v[i].ret && v[i].ret != -ENOENT;
		if (inspect) {
			state_cmd_print_file(label, "", v[i].ret, v[i].size, &v[i].rep);
			if (dir && v[i].prev_ret != -ENOENT)
				state_cmd_print_file(label, ".prev", v[i].prev_ret, v[i].prev_size, &v[i].prev_rep);
		} else {
			state_cmd_print_problem(label, "", v[i].ret, &v[i].rep);
			state_cmd_print_problem(label, ".prev", v[i].prev_ret, &v[i].prev_rep);
		}
	}
	printf("%s: %s\n", state_store_name(st), bad ? "DAMAGED" : any ? "intact" : "no state yet");
	state_store_close(st);
	free(lock_path);
	return bad ? 1 : 0;
}
