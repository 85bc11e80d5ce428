/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target for uevent_parse() (bridge/uevent.c): the input is one
 * netlink message as the listener receives it.  It is copied into a buffer
 * of exactly its size, so ASan catches a read of buf[len]; a result that
 * breaks the documented contract aborts.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "uevent.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* s must be a NUL-terminated string inside buf[0..len). */
static void check_inside(const char *s, const char *buf, size_t len)
{
	if (s < buf || s >= buf + len || !memchr(s, '\0', (size_t)(buf + len - s)))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size ? size : 1);
	struct uevent ev, sentinel;
	int ret;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	memset(&sentinel, 0xa5, sizeof(sentinel));
	memcpy(&ev, &sentinel, sizeof(ev));
	ret = uevent_parse(buf, size, &ev);
	if (ret == 0) {
		check_inside(ev.action, buf, size);
		check_inside(ev.devpath, buf, size);
		if (ev.subsystem)
			check_inside(ev.subsystem, buf, size);
		if (ev.devname)
			check_inside(ev.devname, buf, size);
		if (!*ev.action || ev.devpath[0] != '/')
			abort();
		if (ev.has_devnum ? (ev.major > 0xfff || ev.minor > 0xfffff) : (ev.major || ev.minor))
			abort();
	} else if (ret != -EINVAL || memcmp(&ev, &sentinel, sizeof(ev))) {
		abort();
	}
	free(buf);
	return 0;
}
