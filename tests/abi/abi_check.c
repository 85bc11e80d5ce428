/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The PTM ABI cross-check (issue 10, point 4): every ioctl number, struct
 * size and field offset of our kmod-headers/ptm.h equals Debian's
 * <swtpm/tpm_ioctl.h> (swtpm-dev 0.7.1); the items newer than that header
 * (PTM_LOCK_STORAGE and its struct, swtpm >= 0.8) equal ptm-abi.tsv, the
 * table printed by a compiled program against upstream's header.  The two
 * headers define the same names, so each is compiled in its own unit
 * (abi_swtpm.c, abi_ours.c) into a table of (name, value).
 *
 * usage: abi_check PTM-ABI.TSV
 * Prints one PASS/FAIL line per item (tests/README.md); exits 1 on a FAIL.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abi-items.h"

#define TSV_MAX 128

struct tsv_entry {
	char name[96];
	unsigned long long value;
};

static struct tsv_entry tsv[TSV_MAX];
static size_t tsv_n;
static int failures;

static void result(bool ok, const char *src, const char *name, unsigned long long want,
		   unsigned long long got)
{
	char label[128];
	size_t j = 0;

	/* One token per check: "offsetof(struct ptm_init, u.req.init_flags)" -> "offsetof(struct_ptm_init,u.req.init_flags)". */
	for (size_t i = 0; name[i] && j < sizeof(label) - 1; i++) {
		if (name[i] != ' ')
			label[j++] = name[i];
		else if (i && name[i - 1] != ',')
			label[j++] = '_';
	}
	label[j] = '\0';
	if (ok) {
		printf("PASS abi/%s/%s = 0x%llx\n", src, label, got);
	} else {
		printf("FAIL abi/%s/%s: ours 0x%llx, %s 0x%llx\n", src, label, got, src, want);
		failures++;
	}
}

static void tsv_add(const char *name, unsigned long long value)
{
	if (tsv_n == TSV_MAX)
		return;
	snprintf(tsv[tsv_n].name, sizeof(tsv[tsv_n].name), "%s", name);
	tsv[tsv_n++].value = value;
}

/*
 * ptm-abi.tsv: a header line, one row per ioctl (name, cmd, request hex,
 * direction, struct, sizeof), a blank line, a header line, one row per
 * constant (name, value).  Each ioctl row gives its request and
 * "sizeof(struct <struct>)".
 */
static int tsv_load(const char *path)
{
	char line[512];
	FILE *f = fopen(path, "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char name[96], dir[16], st[64], req[32];
		unsigned long long cmd, size, value;

		if (sscanf(line, "%95s %llu %31s %15s %63s %llu", name, &cmd, req, dir, st, &size) == 6) {
			char s[96];

			tsv_add(name, strtoull(req, NULL, 16));
			snprintf(s, sizeof(s), "sizeof(%s%s)", strncmp(st, "ptm_cap", 8) && strcmp(st, "ptm_res") ?
				 "struct " : "", st);
			tsv_add(s, size);
		} else if (sscanf(line, "%95s %llu", name, &value) == 2) {
			tsv_add(name, value);
		}
	}
	fclose(f);
	return 0;
}

static const struct tsv_entry *tsv_find(const char *name)
{
	for (size_t i = 0; i < tsv_n; i++) {
		if (!strcmp(tsv[i].name, name))
			return &tsv[i];
	}
	return NULL;
}

int main(int argc, char **argv)
{
	const struct abi_item *theirs, *ours, *newer;
	size_t n_theirs, n_ours, n_new;

	theirs = abi_swtpm_items(&n_theirs);
	ours = abi_ours_items(&n_ours);
	newer = abi_ours_new_items(&n_new);
	if (n_theirs != n_ours) {
		printf("FAIL abi/tables: %zu items from swtpm's header, %zu from ours\n", n_theirs, n_ours);
		return 1;
	}
	/* 1. Debian's header. */
	for (size_t i = 0; i < n_ours; i++)
		result(theirs[i].value == ours[i].value, "swtpm", ours[i].name, theirs[i].value, ours[i].value);

	/* 2. What Debian's header lacks, against the spec's table. */
	if (argc < 2 || tsv_load(argv[1]) < 0) {
		printf("FAIL abi/tsv: cannot read %s\n", argc < 2 ? "(no path given)" : argv[1]);
		return 1;
	}
	for (size_t i = 0; i < n_new; i++) {
		const struct tsv_entry *t = tsv_find(newer[i].name);

		if (t) {
			result(t->value == newer[i].value, "tsv", newer[i].name, t->value, newer[i].value);
		} else if (strncmp(newer[i].name, "offsetof(", 9) == 0) {
			/* ptm_lockstorage (ptm-ioctl.md section 3): retries 0:4 in, tpm_result 0:4 out. */
			result(newer[i].value == 0, "spec", newer[i].name, 0, newer[i].value);
		} else {
			printf("FAIL abi/tsv/%s: not in %s\n", newer[i].name, argv[1]);
			failures++;
		}
	}
	/* 3. Every number of the table, old and new, as our header has it: no row of ours may differ. */
	for (size_t i = 0; i < n_ours; i++) {
		const struct tsv_entry *t = tsv_find(ours[i].name);

		if (t && t->value != ours[i].value)
			result(false, "tsv", ours[i].name, t->value, ours[i].value);
	}
	return failures ? 1 : 0;
}
