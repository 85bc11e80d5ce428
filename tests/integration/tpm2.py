"""Raw TPM 2.0 commands built and parsed in Python (stdlib only).

Just enough of the TPM 2.0 wire format (TCG TPM 2.0 Part 2/3) for the tests:
Startup, Shutdown, GetRandom, PCR_Extend, PCR_Read, NV_DefineSpace, NV_Write,
NV_Read, NV_ReadPublic, GetCapability, CreatePrimary (ECC P-256 storage key),
EvictControl, ReadPublic, FlushContext.  Everything is big-endian.
"""
import hashlib
import struct

TAG_NO_SESSIONS = 0x8001
TAG_SESSIONS = 0x8002

SU_CLEAR = 0
SU_STATE = 1

RH_OWNER = 0x40000001
RH_PLATFORM = 0x4000000C
RS_PW = 0x40000009

ALG_SHA1 = 0x0004
ALG_SHA256 = 0x000B
ALG_AES = 0x0006
ALG_CFB = 0x0043
ALG_NULL = 0x0010
ALG_ECC = 0x0023
ECC_NIST_P256 = 0x0003

CC_NV_UndefineSpace = 0x122
CC_EvictControl = 0x120
CC_CreatePrimary = 0x131
CC_NV_DefineSpace = 0x12A
CC_NV_Write = 0x137
CC_Startup = 0x144
CC_Shutdown = 0x145
CC_NV_Read = 0x14E
CC_FlushContext = 0x165
CC_NV_ReadPublic = 0x169
CC_ReadPublic = 0x173
CC_GetCapability = 0x17A
CC_GetRandom = 0x17B
CC_PCR_Read = 0x17E
CC_PCR_Extend = 0x182

CAP_HANDLES = 1
CAP_TPM_PROPERTIES = 6
PT_FIXED = 0x100
PT_MANUFACTURER = PT_FIXED + 5
PT_VAR = 0x200
PT_LOCKOUT_COUNTER = PT_VAR + 14

RC_SUCCESS = 0
RC_INITIALIZE = 0x100
RC_FAILURE = 0x101
RC_COMMAND_SIZE = 0x142

# NV attributes of an ordinary index: owner and auth may read and write.
NVA_OWNERWRITE = 1 << 1
NVA_AUTHWRITE = 1 << 2
NVA_OWNERREAD = 1 << 17
NVA_AUTHREAD = 1 << 18
NVA_NO_DA = 1 << 25
NV_ORDINARY_RW = NVA_OWNERWRITE | NVA_AUTHWRITE | NVA_OWNERREAD | NVA_AUTHREAD


class TpmError(Exception):
    def __init__(self, what, rc):
        super().__init__('%s: TPM rc 0x%x' % (what, rc))
        self.rc = rc


def command(cc, body=b'', tag=TAG_NO_SESSIONS):
    return struct.pack('>HII', tag, 10 + len(body), cc) + body


def tpm2b(data):
    return struct.pack('>H', len(data)) + data


def pw_auth(auth=b''):
    """An authorization area with one password session."""
    sess = struct.pack('>IHBH', RS_PW, 0, 0, len(auth)) + auth
    return struct.pack('>I', len(sess)) + sess


def parse_header(resp):
    if len(resp) < 10:
        raise ValueError('response shorter than 10 bytes: %s' % resp.hex())
    tag, size, rc = struct.unpack('>HII', resp[:10])
    return tag, size, rc


def rc_of(resp):
    return parse_header(resp)[2]


def params(resp, nhandles=0):
    """The response parameters, after handles and the parameterSize field."""
    tag, size, rc = parse_header(resp)
    off = 10 + 4 * nhandles
    if tag == TAG_SESSIONS:
        (psize,) = struct.unpack('>I', resp[off:off + 4])
        return resp[off + 4:off + 4 + psize]
    return resp[off:size]


# ---- builders ----

def startup(su=SU_CLEAR):
    return command(CC_Startup, struct.pack('>H', su))


def shutdown(su=SU_CLEAR):
    return command(CC_Shutdown, struct.pack('>H', su))


def get_random(n):
    return command(CC_GetRandom, struct.pack('>H', n))


def pcr_extend(pcr, data=b'vtpm-bridge', alg=ALG_SHA256):
    digest = hashlib.new('sha1' if alg == ALG_SHA1 else 'sha256', data).digest()
    body = struct.pack('>I', pcr) + pw_auth() + struct.pack('>IH', 1, alg) + digest
    return command(CC_PCR_Extend, body, TAG_SESSIONS)


def pcr_select(pcrs, alg=ALG_SHA256):
    bits = bytearray(3)
    for p in pcrs:
        bits[p // 8] |= 1 << (p % 8)
    return struct.pack('>IHB', 1, alg, 3) + bytes(bits)


def pcr_read(pcr, alg=ALG_SHA256):
    return command(CC_PCR_Read, pcr_select([pcr], alg))


def nv_define(index, size, attrs=NV_ORDINARY_RW, auth=b'', name_alg=ALG_SHA256):
    pub = struct.pack('>IHI', index, name_alg, attrs) + tpm2b(b'') + struct.pack('>H', size)
    body = struct.pack('>I', RH_OWNER) + pw_auth() + tpm2b(auth) + tpm2b(pub)
    return command(CC_NV_DefineSpace, body, TAG_SESSIONS)


def nv_write(index, data, offset=0, auth_handle=RH_OWNER, auth=b''):
    body = struct.pack('>II', auth_handle, index) + pw_auth(auth) + tpm2b(data) + struct.pack('>H', offset)
    return command(CC_NV_Write, body, TAG_SESSIONS)


def nv_read(index, size, offset=0, auth_handle=RH_OWNER, auth=b''):
    body = struct.pack('>II', auth_handle, index) + pw_auth(auth) + struct.pack('>HH', size, offset)
    return command(CC_NV_Read, body, TAG_SESSIONS)


def get_capability(cap, prop, count):
    return command(CC_GetCapability, struct.pack('>III', cap, prop, count))


def ecc_storage_template():
    """TPMT_PUBLIC of an ECC P-256 restricted decryption (storage) key."""
    attrs = (1 << 1) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 16) | (1 << 17)
    # fixedTPM fixedParent sensitiveDataOrigin userWithAuth restricted decrypt
    t = struct.pack('>HHI', ALG_ECC, ALG_SHA256, attrs) + tpm2b(b'')
    t += struct.pack('>HHH', ALG_AES, 128, ALG_CFB)  # symmetric
    t += struct.pack('>H', ALG_NULL)                 # scheme
    t += struct.pack('>H', ECC_NIST_P256)            # curve
    t += struct.pack('>H', ALG_NULL)                 # kdf
    t += tpm2b(b'') + tpm2b(b'')                     # unique x, y
    return t


def create_primary(hierarchy=RH_OWNER, unique=b''):
    sens = tpm2b(tpm2b(b'') + tpm2b(b''))
    tmpl = ecc_storage_template()
    if unique:  # replace the empty x with `unique` so templates differ
        tmpl = tmpl[:-4] + tpm2b(unique) + tpm2b(b'')
    body = struct.pack('>I', hierarchy) + pw_auth() + sens + tpm2b(tmpl) + tpm2b(b'') + struct.pack('>I', 0)
    return command(CC_CreatePrimary, body, TAG_SESSIONS)


def evict_control(obj, persistent, auth=RH_OWNER):
    body = struct.pack('>II', auth, obj) + pw_auth() + struct.pack('>I', persistent)
    return command(CC_EvictControl, body, TAG_SESSIONS)


def read_public(handle):
    return command(CC_ReadPublic, struct.pack('>I', handle))


def flush_context(handle):
    return command(CC_FlushContext, struct.pack('>I', handle))


# ---- parsers ----

def parse_get_random(resp):
    p = params(resp)
    (n,) = struct.unpack('>H', p[:2])
    return p[2:2 + n]


def parse_pcr_read(resp):
    """The first digest of a PCR_Read response."""
    p = params(resp)
    off = 4
    (count,) = struct.unpack('>I', p[off:off + 4])
    off += 4
    for _ in range(count):
        sz = p[off + 2]
        off += 3 + sz
    (ndig,) = struct.unpack('>I', p[off:off + 4])
    off += 4
    if ndig == 0:
        return None
    (dsz,) = struct.unpack('>H', p[off:off + 2])
    return p[off + 2:off + 2 + dsz]


def parse_nv_read(resp):
    p = params(resp)
    (n,) = struct.unpack('>H', p[:2])
    return p[2:2 + n]


def parse_properties(resp):
    """{property: value} from a GetCapability(TPM_PROPERTIES) response."""
    p = params(resp)
    cap, count = struct.unpack('>II', p[1:9])
    out = {}
    for i in range(count):
        k, v = struct.unpack('>II', p[9 + 8 * i:17 + 8 * i])
        out[k] = v
    return out


def parse_handles(resp):
    p = params(resp)
    cap, count = struct.unpack('>II', p[1:9])
    return [struct.unpack('>I', p[9 + 4 * i:13 + 4 * i])[0] for i in range(count)]


def parse_create_primary(resp):
    """(handle, name) of a CreatePrimary response."""
    (handle,) = struct.unpack('>I', resp[10:14])
    p = params(resp, 1)
    (plen,) = struct.unpack('>H', p[:2])
    off = 2 + plen
    (clen,) = struct.unpack('>H', p[off:off + 2])
    off += 2 + clen
    (hlen,) = struct.unpack('>H', p[off:off + 2])
    off += 2 + hlen
    off += 6  # creation ticket: tag, hierarchy
    (dlen,) = struct.unpack('>H', p[off:off + 2])
    off += 2 + dlen
    (nlen,) = struct.unpack('>H', p[off:off + 2])
    return handle, p[off + 2:off + 2 + nlen]


def parse_read_public(resp):
    """The object's name from a ReadPublic response."""
    p = params(resp)
    (plen,) = struct.unpack('>H', p[:2])
    off = 2 + plen
    (nlen,) = struct.unpack('>H', p[off:off + 2])
    return p[off + 2:off + 2 + nlen]
