/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target for an instance's record (/run/vtpm-bridge/NAME/instance,
 * bridge/instance.c), which the udev rule's helper reads as root: any
 * bytes either parse into a record whose strings hold only what a name
 * may (so nothing else reaches udev's properties or a path), or are
 * refused with -EINVAL.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "instance.h"

static void fuzz_name_chars(const char *s, size_t size)
{
	if (strnlen(s, size) == size)
		abort();
	for (; *s; s++) {
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      *s == '_' || *s == '.' || *s == '-'))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct instance_record rec;
	int ret;

	memset(&rec, 0, sizeof(rec));
	ret = instance_record_parse(&rec, (const char *)data, size);
	if (ret != 0 && ret != -EINVAL)
		abort();
	if (ret == 0) {
		if (rec.pid <= 0 || !rec.starttime || rec.mode > 0777 || !rec.owner[0] || !rec.group[0])
			abort();
		fuzz_name_chars(rec.owner, sizeof(rec.owner));
		fuzz_name_chars(rec.group, sizeof(rec.group));
		fuzz_name_chars(rec.tpm, sizeof(rec.tpm));
		fuzz_name_chars(rec.tpmrm, sizeof(rec.tpmrm));
		fuzz_name_chars(rec.cuse, sizeof(rec.cuse));
	}
	return 0;
}
