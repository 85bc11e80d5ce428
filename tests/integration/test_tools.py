"""Real peers: tpm2-tools (tpm2-tss TCTI `swtpm:`) over a unix and a TCP socket pair."""
import hashlib
import os

import tpm2
from harness import test, check, Fail

TRANSPORTS = ('unix', 'tcp')


def start(ctx, transport):
    return ctx.start(ctrl=transport, server=transport)


def out(r):
    return r.stdout.decode(errors='replace')


for transport in TRANSPORTS:
    def _getrandom(ctx, transport=transport):
        d = start(ctx, transport)
        seen = set()
        for _ in range(2):
            hexs = out(ctx.tools(d, 'tpm2_getrandom', '--hex', '24')).strip()
            check(len(hexs) == 48 and all(c in '0123456789abcdef' for c in hexs),
                  'tpm2_getrandom 24 --hex printed %r' % hexs)
            seen.add(hexs)
        check(len(seen) == 2, 'two tpm2_getrandom calls returned the same bytes')
        r = ctx.tools(d, 'tpm2_getrandom', '-o', ctx.path('rnd'), '64')
        check(os.path.getsize(ctx.path('rnd')) == 64, 'tpm2_getrandom -o wrote %d bytes' % os.path.getsize(ctx.path('rnd')))
    test('tools/%s/getrandom' % transport)(_getrandom)

    def _pcr(ctx, transport=transport):
        d = start(ctx, transport)
        before = out(ctx.tools(d, 'tpm2_pcrread', 'sha256:16'))
        check('0x' + '0' * 64 in before, 'PCR 16 after Startup is not zero: %r' % before)
        digest = hashlib.sha256(b'integration').digest()
        ctx.tools(d, 'tpm2_pcrextend', '16:sha256=' + digest.hex())
        expect = hashlib.sha256(b'\0' * 32 + digest).hexdigest().upper()
        after = out(ctx.tools(d, 'tpm2_pcrread', 'sha256:16'))
        check(expect in after.upper(), 'PCR 16 after extend: %r, expected 0x%s' % (after.strip(), expect))
        # and the raw TPM agrees (same TPM, different client)
        check(tpm2.parse_pcr_read(d.tpm(tpm2.pcr_read(16))).hex().upper() == expect,
              'raw PCR_Read disagrees with tpm2_pcrread')
    test('tools/%s/pcrextend-pcrread' % transport)(_pcr)

    def _sign(ctx, transport=transport):
        d = start(ctx, transport)
        p = ctx.path
        with open(p('msg'), 'wb') as f:
            f.write(b'message to sign')
        with open(p('other'), 'wb') as f:
            f.write(b'another message')
        ctx.tools(d, 'tpm2_createprimary', '-C', 'o', '-G', 'ecc', '-c', p('prim.ctx'))
        ctx.tools(d, 'tpm2_flushcontext', '-t')
        ctx.tools(d, 'tpm2_create', '-C', p('prim.ctx'), '-G', 'ecc', '-p', 'keypass',
                  '-u', p('k.pub'), '-r', p('k.priv'))
        ctx.tools(d, 'tpm2_flushcontext', '-t')
        ctx.tools(d, 'tpm2_load', '-C', p('prim.ctx'), '-u', p('k.pub'), '-r', p('k.priv'), '-c', p('k.ctx'))
        ctx.tools(d, 'tpm2_flushcontext', '-t')
        ctx.tools(d, 'tpm2_sign', '-c', p('k.ctx'), '-p', 'keypass', '-g', 'sha256', '-o', p('sig'), p('msg'))
        ctx.tools(d, 'tpm2_flushcontext', '-t')
        ctx.tools(d, 'tpm2_verifysignature', '-c', p('k.ctx'), '-g', 'sha256', '-m', p('msg'), '-s', p('sig'))
        ctx.tools(d, 'tpm2_flushcontext', '-t')
        r = ctx.tools(d, 'tpm2_verifysignature', '-c', p('k.ctx'), '-g', 'sha256', '-m', p('other'),
                      '-s', p('sig'), ok=False)
        check(r.returncode != 0, 'tpm2_verifysignature accepted the signature for another message')
        ctx.tools(d, 'tpm2_flushcontext', '-t')
        r = ctx.tools(d, 'tpm2_sign', '-c', p('k.ctx'), '-p', 'wrongpass', '-g', 'sha256', '-o', p('sig2'),
                      p('msg'), ok=False)
        check(r.returncode != 0, 'tpm2_sign with a wrong password succeeded')
    test('tools/%s/createprimary-create-load-sign-verifysignature' % transport)(_sign)

    def _nv(ctx, transport=transport):
        d = start(ctx, transport)
        data = os.urandom(48)
        with open(ctx.path('nvdata'), 'wb') as f:
            f.write(data)
        ctx.tools(d, 'tpm2_nvdefine', '0x1500016', '-C', 'o', '-s', '48', '-a',
                  'ownerread|ownerwrite|authread|authwrite')
        ctx.tools(d, 'tpm2_nvwrite', '0x1500016', '-C', 'o', '-i', ctx.path('nvdata'))
        got = ctx.tools(d, 'tpm2_nvread', '0x1500016', '-C', 'o', '-s', '48').stdout
        check(got == data, 'tpm2_nvread returned %s, written %s' % (got.hex(), data.hex()))
        listing = out(ctx.tools(d, 'tpm2_nvreadpublic'))
        check('0x1500016' in listing.lower(), 'tpm2_nvreadpublic does not list 0x1500016: %r' % listing[:300])
    test('tools/%s/nvdefine-nvwrite-nvread' % transport)(_nv)

    def _getcap(ctx, transport=transport):
        d = start(ctx, transport)
        fixed = out(ctx.tools(d, 'tpm2_getcap', 'properties-fixed'))
        check('TPM2_PT_FAMILY_INDICATOR' in fixed and '"2.0"' in fixed,
              'tpm2_getcap properties-fixed lacks the family "2.0": %r' % fixed[:300])
        algs = out(ctx.tools(d, 'tpm2_getcap', 'algorithms'))
        check('sha256' in algs and 'ecc' in algs, 'tpm2_getcap algorithms lacks sha256/ecc')
        cmds = out(ctx.tools(d, 'tpm2_getcap', 'commands'))
        check('TPM2_CC_GetRandom' in cmds, 'tpm2_getcap commands lacks GetRandom')
        var = out(ctx.tools(d, 'tpm2_getcap', 'properties-variable'))
        check('TPM2_PT_LOCKOUT_COUNTER' in var, 'tpm2_getcap properties-variable lacks the lockout counter')
    test('tools/%s/getcap' % transport)(_getcap)
