#!/usr/bin/env python3
"""Split perf profiles of the bench's tls row (netlab bench -rows tls -perf DIR)
into where the proxy's CPU goes: each sample's symbol (or, for libraries
without symbols, its library) into one row. Usage:

    scripts/tlsprofile.py DIR/halb-https-conn-ecdsa-r1.data ...

prints, per file, each row's share of the samples."""
import re
import subprocess
import sys

# (row, dso pattern, symbol pattern); the first match wins.
ROWS = [
    ("AES-GCM", r"", r"gcm|aes|ghash|polyval|ctr32|xts"),
    ("X25519", r"", r"x25519|edwards25519|curve25519|fe51|fe64|ecdh\.x25519"),
    ("P-256 (ECDSA sign)", r"", r"nistec|p256|nistz256|ecdsa|ecp_|ec_GFp|ec_scalar"),
    ("RSA / big numbers", r"", r"bigmod|rsa|bn_|BN_|mont|rsaz"),
    ("SHA-2, HMAC, HKDF", r"", r"sha256|sha512|sha1|hmac|hkdf|SHA256|SHA512|blockAVX2|blockSHANI|block\.abi0"),
    ("TLS protocol (Go crypto/tls, libssl)", r"libssl", r"crypto/tls\.|^tls_|^ssl_|^SSL_"),
    ("libcrypto without symbols (Debian strips its static functions)", r"libcrypto", r"^0x"),
    ("libssl without symbols", r"libssl", r"^0x"),
    ("other crypto (Go crypto/*, libcrypto: EVP, providers, ASN.1)", r"libcrypto|halbd", r"^crypto/|OPENSSL|EVP_|ossl_|ASN1|^CRYPTO_|^OSSL_|^ERR_|^[a-z0-9_]+$"),
    ("Go GC", r"", r"runtime\.(gc|scan|grey|mark|sweep|findObject|tryDefer|step|findfunc|.*unwinder|.*stkframe|pcvalue|funcInfo|spanSet|heapBits|wbBuf|bulkBarrier|typePointers|scanblock|scanstack|scanframe|writeHeapBits|(\(\*gcWork\))|(\(\*mspan\)))"),
    ("Go allocation", r"", r"runtime\.(malloc|newobject|makeslice|growslice|memclr|nextFree|mcache|mcentral|mheap|refill|allocSpan|rawstring|concatstring)"),
    ("Go runtime (scheduler, netpoll, syscalls)", r"", r"^runtime\.|^internal/runtime|^syscall\.|^internal/poll|^net\.|^os\.|^sync|^time\.|^internal/"),
    ("halb proxy code", r"", r"^halb/"),
    ("HAProxy's own code", r"^haproxy$", r""),
    ("libc (malloc, locks, memcpy)", r"libc\.so", r""),
    ("kernel: hypervisor irq enable (pvm)", r"kernel", r"pvm_irq_enable"),
    ("kernel: network, syscalls, scheduling", r"kernel", r""),
]


def split(path):
    out = subprocess.run(["perf", "report", "-i", path, "--no-children", "--sort", "dso,sym",
                          "--stdio", "-q", "--percent-limit", "0"],
                         capture_output=True, text=True, check=True).stdout
    shares = {}
    for line in out.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[(.)\]\s+(.*)$", line)
        if not m:
            continue
        pct, dso, sym = float(m.group(1)), m.group(2), m.group(4).strip()
        row = "other"
        for name, dp, sp in ROWS:
            if dp and not re.search(dp, dso):
                continue
            if sp and not re.search(sp, sym):
                continue
            row = name
            break
        shares[row] = shares.get(row, 0) + pct
        if row == "other" and DEBUG:
            print("   other:", pct, dso, sym)
    return shares


DEBUG = "-v" in sys.argv


for path in [a for a in sys.argv[1:] if a != "-v"]:
    s = split(path)
    print(path)
    for name, pct in sorted(s.items(), key=lambda kv: -kv[1]):
        print(f"  {pct:5.1f}%  {name}")
