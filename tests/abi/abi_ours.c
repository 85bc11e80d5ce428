/* SPDX-License-Identifier: BSD-3-Clause */
/* The ABI items as our kmod-headers/ptm.h defines them. */
#include <ptm.h>

#include "abi-items.h"

#define X(name, value) { name, value },
static const struct abi_item items[] = { ABI_ITEMS };
static const struct abi_item new_items[] = { ABI_ITEMS_NEW };
#undef X

const struct abi_item *abi_ours_items(size_t *n)
{
	*n = sizeof(items) / sizeof(items[0]);
	return items;
}

const struct abi_item *abi_ours_new_items(size_t *n)
{
	*n = sizeof(new_items) / sizeof(new_items[0]);
	return new_items;
}
