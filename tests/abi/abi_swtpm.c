/* SPDX-License-Identifier: BSD-3-Clause */
/* The ABI items as Debian's swtpm-dev header defines them (package swtpm-dev). */
#include <swtpm/tpm_ioctl.h>

#include "abi-items.h"

#define X(name, value) { name, value },
static const struct abi_item items[] = { ABI_ITEMS };
#undef X

const struct abi_item *abi_swtpm_items(size_t *n)
{
	*n = sizeof(items) / sizeof(items[0]);
	return items;
}
