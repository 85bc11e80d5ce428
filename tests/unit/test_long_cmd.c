/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Which commands go to the worker thread (emu_command_is_long): RSA key
 * generation does, an ECC key does not, an unreadable template does.
 * Needs no libtpms: emu_create() does not load it.
 */
#include <stdbool.h>

#include "tpm.h"
#include "unit.h"

/* TPM2_CreatePrimary(owner) with a password session and a key of `type`. */
static size_t create_primary(uint8_t *c, uint16_t tag, uint16_t type)
{
	size_t n = 0;

	c[n++] = (uint8_t)(tag >> 8);
	c[n++] = (uint8_t)tag;
	n += 4;					/* size, filled below */
	memcpy(c + n, "\x00\x00\x01\x31", 4);	/* CreatePrimary */
	n += 4;
	memcpy(c + n, "\x40\x00\x00\x01", 4);	/* TPM_RH_OWNER */
	n += 4;
	if (tag == 0x8002) {
		memcpy(c + n, "\x00\x00\x00\x09" "\x40\x00\x00\x09" "\x00\x00" "\x00" "\x00\x00", 13);
		n += 13;
	}
	memcpy(c + n, "\x00\x04" "\x00\x00\x00\x00", 6);	/* inSensitive */
	n += 6;
	memcpy(c + n, "\x00\x04", 2);			/* inPublic size (truncated template) */
	n += 2;
	c[n++] = (uint8_t)(type >> 8);
	c[n++] = (uint8_t)type;
	c[n++] = 0;
	c[n++] = 0x0b;
	c[2] = c[3] = c[4] = 0;
	c[5] = (uint8_t)n;
	return n;
}

TEST(rsa_goes_to_the_worker_ecc_does_not)
{
	struct emu_config cfg = { .tpm2 = true };
	struct emu *emu;
	uint8_t c[64];
	size_t n;

	CHECK_EQ(emu_create(&emu, &cfg), 0);
	n = create_primary(c, 0x8002, 0x0001);
	CHECK(emu_command_is_long(emu, c, n));
	n = create_primary(c, 0x8002, 0x0023);
	CHECK(!emu_command_is_long(emu, c, n));
	n = create_primary(c, 0x8001, 0x0001);
	CHECK(emu_command_is_long(emu, c, n));
	n = create_primary(c, 0x8001, 0x0023);
	CHECK(!emu_command_is_long(emu, c, n));
	/* truncated anywhere: not readable, so to the worker */
	n = create_primary(c, 0x8002, 0x0023);
	for (size_t cut = 10; cut < n - 2; cut++)
		CHECK(emu_command_is_long(emu, c, cut));
	/* a lying auth size does not read past the end */
	n = create_primary(c, 0x8002, 0x0023);
	memcpy(c + 14, "\xff\xff\xff\xf0", 4);
	CHECK(emu_command_is_long(emu, c, n));
	/* other commands stay inline */
	memcpy(c + 6, "\x00\x00\x01\x7b", 4);	/* GetRandom */
	CHECK(!emu_command_is_long(emu, c, 12));
	emu_destroy(emu);
}

/* Every cut of a command, in a buffer of exactly that size: ASan sees any read past it. */
static bool is_long_exact(struct emu *emu, const uint8_t *c, size_t len)
{
	uint8_t *copy = malloc(len);
	bool ret;

	if (!copy)
		abort();
	memcpy(copy, c, len);
	ret = emu_command_is_long(emu, copy, len);
	free(copy);
	return ret;
}

TEST(short_create_commands_read_nothing_past_their_end)
{
	static const uint8_t issue9[10] = { 0x80, 0x01, 0, 0, 0, 0x0a, 0, 0, 0x01, 0x31 };
	static const uint8_t ords[3][4] = { "\x00\x00\x01\x31", "\x00\x00\x01\x53", "\x00\x00\x01\x91" };
	struct emu_config cfg = { .tpm2 = true };
	struct emu *emu;
	uint8_t c[64];

	CHECK_EQ(emu_create(&emu, &cfg), 0);
	/* CreatePrimary without sessions, 10 bytes: unreadable, so to the worker */
	CHECK(is_long_exact(emu, issue9, sizeof(issue9)));
	for (int tag = 0; tag < 2; tag++) {
		for (size_t o = 0; o < 3; o++) {
			size_t n = create_primary(c, tag ? 0x8002 : 0x8001, 0x0023);

			memcpy(c + 6, ords[o], 4);
			for (size_t cut = 0; cut <= n; cut++)
				(void)is_long_exact(emu, c, cut);
			CHECK(!is_long_exact(emu, c, n));
		}
	}
	emu_destroy(emu);
}

TEST(tpm12_key_ordinals_go_to_the_worker)
{
	struct emu_config cfg = { .tpm2 = false };
	struct emu *emu;
	uint8_t c[10] = { 0x00, 0xc1, 0, 0, 0, 10, 0, 0, 0, 0x1f };

	CHECK_EQ(emu_create(&emu, &cfg), 0);
	CHECK(emu_command_is_long(emu, c, sizeof(c)));
	c[9] = 0x46;	/* GetRandom */
	CHECK(!emu_command_is_long(emu, c, sizeof(c)));
	emu_destroy(emu);
}

UNIT_MAIN("unit/long_cmd",
	  UNIT(rsa_goes_to_the_worker_ecc_does_not),
	  UNIT(short_create_commands_read_nothing_past_their_end),
	  UNIT(tpm12_key_ordinals_go_to_the_worker))
