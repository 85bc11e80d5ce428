/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A minimal unit-test harness: each TEST prints one PASS/FAIL line in the
 * format tests/run-all.sh counts.  A CHECK failure ends that test only.
 */
#ifndef VTPM_UNIT_H
#define VTPM_UNIT_H

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct unit_test {
	const char *name;
	void (*fn)(int *failed);
};

#define CHECK(cond) do {						\
	if (!(cond)) {							\
		printf("    %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
		*unit_failed = 1;					\
		return;							\
	}								\
} while (0)

#define CHECK_EQ(a, b) do {						\
	long long unit_a = (long long)(a), unit_b = (long long)(b);	\
	if (unit_a != unit_b) {						\
		printf("    %s:%d: %s == %lld, expected %s == %lld\n",	\
		       __FILE__, __LINE__, #a, unit_a, #b, unit_b);	\
		*unit_failed = 1;					\
		return;							\
	}								\
} while (0)

#define TEST(name) static void name(int *unit_failed)
#define UNIT(name) { #name, name }

static inline int unit_run(const char *suite, const struct unit_test *tests, size_t n)
{
	int bad = 0;

	for (size_t i = 0; i < n; i++) {
		int failed = 0;

		fflush(stdout);
		tests[i].fn(&failed);
		printf("%s %s/%s\n", failed ? "FAIL" : "PASS", suite, tests[i].name);
		bad |= failed;
	}
	fflush(stdout);
	return bad;
}

#define UNIT_MAIN(suite, ...)						\
int main(void)								\
{									\
	static const struct unit_test unit_tests[] = { __VA_ARGS__ };	\
	return unit_run(suite, unit_tests, sizeof(unit_tests) / sizeof(unit_tests[0])); \
}

/* Removes a test's temporary directory and everything in it. */
static inline int unit_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static inline void rm_tree(const char *dir)
{
	nftw(dir, unit_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Writes a test's input file whole (0600): 0, or -errno / -EIO for a short write. */
static inline int write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, data, len);
	close(fd);
	return n == (ssize_t)len ? 0 : -EIO;
}

/* A fresh temporary directory /tmp/vtpm-TAG.XXXXXX in buf: buf, or NULL. */
static inline char *make_tmpdir(char *buf, size_t size, const char *tag)
{
	snprintf(buf, size, "/tmp/vtpm-%s.XXXXXX", tag);
	return mkdtemp(buf);
}

/* dir/name into buf; a path that does not fit is a bug in the test. */
static inline void join(char *buf, size_t size, const char *dir, const char *name)
{
	int n = snprintf(buf, size, "%s/%s", dir, name);

	if (n < 0 || (size_t)n >= size)
		abort();
}

#endif
