#!/usr/bin/python3
# /usr/bin/python3 on purpose: python3-jwt and python3-cryptography are Debian
# packages, invisible to a pyenv or venv python3 that may come first in PATH.
"""Token server of the bearer-auth test registry (hack/registries.sh, 127.0.0.1:5003).

Implements the Docker registry token spec, enough for the tests and skopeo:

  GET /token?service=S&scope=repository:REPO:pull[,push]   (scope may repeat)
      with HTTP Basic ucr / ucr-secret -> 200 {"token", "access_token",
      "expires_in", "issued_at"} (+ "refresh_token" with offline_token=true);
      wrong or missing credentials -> 401.
  POST /token, form grant_type=refresh_token, refresh_token=ucr-refresh-token,
      service, scope (space-separated), client_id -> 200 {"access_token", ...};
      grant_type=password with username/password works too; wrong token or
      password -> 401, missing client_id or other grant types -> 400.

An authenticated user gets whatever pull/push actions the scopes ask for on any
repository (nothing else). Tokens are ES256 JWTs, iss=ucr-test-issuer,
aud=service, valid 300 s, whose header carries the signing certificate as
x5c: docker-registry 2.8 takes the signing key from x5c (before jwk and kid)
and accepts it when the certificate chains to auth.token.rootcertbundle,
here that same self-signed certificate.

usage: token-server.py keygen DIR      writes DIR/key.pem and DIR/cert.pem
                                       unless present and valid for a day
       token-server.py serve DIR [--listen 127.0.0.1:5004]
"""

import argparse
import base64
import datetime
import hmac
import json
import os
import sys
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

USER, PASSWORD = "ucr", "ucr-secret"
REFRESH_TOKEN = "ucr-refresh-token"
ISSUER = "ucr-test-issuer"
TTL = 300
GRANTABLE = ("pull", "push")


def same(a, b):
    return hmac.compare_digest(a.encode(), b.encode())


def der(public_key):
    return public_key.public_bytes(serialization.Encoding.DER,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)


def keygen(directory):
    key_path = os.path.join(directory, "key.pem")
    cert_path = os.path.join(directory, "cert.pem")
    now = datetime.datetime.now(datetime.timezone.utc)
    try:
        with open(cert_path, "rb") as f:
            cert = x509.load_pem_x509_certificate(f.read())
        with open(key_path, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), None)
        if (cert.not_valid_after.replace(tzinfo=datetime.timezone.utc)
                > now + datetime.timedelta(days=1)
                and der(cert.public_key()) == der(key.public_key())):
            return
    except (OSError, ValueError):
        pass
    os.makedirs(directory, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ucr-test-token-signer")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                          content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False,
                          crl_sign=False, encipher_only=False, decipher_only=False),
            critical=True)
        .sign(key, hashes.SHA256())
    )
    # Written to temporary names and renamed: a reader never sees half a file.
    for path, data, mode in (
        (key_path, key.private_bytes(serialization.Encoding.PEM,
                                     serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()), 0o600),
        (cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644),
    ):
        tmp = path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    print(f"token-server: generated signing key and certificate in {directory}", file=sys.stderr)


def parse_scopes(values):
    """['repository:a/b:pull,push', ...] (each may hold several, space-separated)
    -> [(type, name, [actions])]."""
    out = []
    for value in values:
        for scope in value.split():
            typ, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            if typ and name:
                out.append((typ, name, [a for a in actions.split(",") if a]))
    return out


class Handler(BaseHTTPRequestHandler):
    server_version = "ucr-test-token-server"
    protocol_version = "HTTP/1.1"

    def reply(self, code, body, headers=()):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def refuse(self, why):
        self.reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": why}]},
                   [("WWW-Authenticate", 'Basic realm="ucr-test-token-server"')])

    def token(self, subject, service, scopes):
        now = int(time.time())
        access = []
        for typ, name, actions in scopes:
            granted = [a for a in actions if a in GRANTABLE]
            if typ == "repository" and granted:
                access.append({"type": typ, "name": name, "actions": granted})
        claims = {
            "iss": ISSUER, "sub": subject, "aud": service, "exp": now + TTL,
            "nbf": now - 10, "iat": now, "jti": uuid.uuid4().hex, "access": access,
        }
        signed = jwt.encode(claims, self.server.key, algorithm="ES256",
                            headers={"typ": "JWT", "x5c": [self.server.cert_b64]})
        stamp = datetime.datetime.fromtimestamp(now, datetime.timezone.utc)
        return signed, {"expires_in": TTL, "issued_at": stamp.strftime("%Y-%m-%dT%H:%M:%SZ")}

    def do_GET(self):
        url = urlsplit(self.path)
        if url.path != "/token":
            return self.reply(404, {"errors": [{"code": "NOT_FOUND", "message": url.path}]})
        q = parse_qs(url.query)
        user = None
        header = self.headers.get("Authorization", "")
        if header[:6].lower() == "basic ":
            try:
                u, _, p = base64.b64decode(header[6:].strip()).decode().partition(":")
            except ValueError:
                u, p = "", ""
            if same(u, USER) and same(p, PASSWORD):
                user = u
        if user is None:
            return self.refuse("wrong or missing credentials" if header else "credentials required")
        signed, extra = self.token(user, q.get("service", [""])[0], parse_scopes(q.get("scope", [])))
        body = {"token": signed, "access_token": signed, **extra}
        if q.get("offline_token", [""])[0] == "true":
            body["refresh_token"] = REFRESH_TOKEN
        self.reply(200, body)

    def do_POST(self):
        # Read the body first: the connection is kept alive for the next request.
        length = int(self.headers.get("Content-Length") or 0)
        form = parse_qs(self.rfile.read(length).decode(errors="replace"))
        if urlsplit(self.path).path != "/token":
            return self.reply(404, {"error": "not_found"})
        field = lambda k: form.get(k, [""])[0]  # noqa: E731
        if not field("client_id"):
            return self.reply(400, {"error": "invalid_request",
                                    "error_description": "client_id is required"})
        grant = field("grant_type")
        if grant == "refresh_token":
            ok, user = same(field("refresh_token"), REFRESH_TOKEN), USER
        elif grant == "password":
            ok, user = same(field("username"), USER) and same(field("password"), PASSWORD), USER
        else:
            return self.reply(400, {"error": "unsupported_grant_type"})
        if not ok:
            return self.reply(401, {"error": "invalid_grant"})
        signed, extra = self.token(user, field("service"), parse_scopes(form.get("scope", [])))
        body = {"access_token": signed, "scope": field("scope"), **extra}
        if grant == "password" and field("access_type") == "offline":
            body["refresh_token"] = REFRESH_TOKEN
        self.reply(200, body)


def serve(directory, listen):
    keygen(directory)
    with open(os.path.join(directory, "key.pem"), "rb") as f:
        key = serialization.load_pem_private_key(f.read(), None)
    with open(os.path.join(directory, "cert.pem"), "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    host, _, port = listen.rpartition(":")
    server = ThreadingHTTPServer((host, int(port)), Handler)
    server.key = key
    server.cert_b64 = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
    print(f"token-server: listening on {listen}", file=sys.stderr, flush=True)
    server.serve_forever()


def main():
    p = argparse.ArgumentParser(description="Docker registry token server for ucr's tests")
    sub = p.add_subparsers(dest="cmd", required=True)
    k = sub.add_parser("keygen")
    k.add_argument("dir")
    s = sub.add_parser("serve")
    s.add_argument("dir")
    s.add_argument("--listen", default="127.0.0.1:5004")
    a = p.parse_args()
    if a.cmd == "keygen":
        keygen(a.dir)
    else:
        serve(a.dir, a.listen)


if __name__ == "__main__":
    main()
