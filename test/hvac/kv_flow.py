"""Drives a fresh Fleetroot server with Debian's hvac 0.11.2, asserting every call's result.

Run by test/secrets-hvac.test.ts under /usr/bin/python3: VAULT_ADDR names the server, PLANTED a value
that must come back from reads (and must never appear in the audit log, checked by the caller).
Prints one "ok <step>" line per step and "ALL OK" at the end; any failure exits non-zero.
"""
import os
import sys

import hvac
from hvac import exceptions

addr = os.environ["VAULT_ADDR"]
planted = os.environ["PLANTED"]


def step(name):
    print("ok " + name, flush=True)


def expect_raises(exc, fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except exc as e:
        return e
    raise AssertionError("expected %s from %s" % (exc.__name__, fn.__name__))


from importlib.metadata import version  # noqa: E402

assert version("hvac") == "0.11.2", version("hvac")
client = hvac.Client(url=addr)

# init, unseal, seal status
assert client.sys.is_initialized() is False
init = client.sys.initialize(secret_shares=1, secret_threshold=1)
assert len(init["keys"]) == 1 and init["root_token"].startswith("frs.")
assert client.sys.is_sealed() is True
status = client.sys.submit_unseal_key(key=init["keys"][0])
assert status["sealed"] is False and status["t"] == 1, status
assert client.sys.read_seal_status()["sealed"] is False
client.token = init["root_token"]
assert client.is_authenticated()
step("init unseal seal-status")

kv = client.secrets.kv.v2
# create, read, versions
w1 = kv.create_or_update_secret(path="app/db", secret={"password": planted, "user": "app"})
assert w1["data"]["version"] == 1, w1
w2 = kv.create_or_update_secret(path="app/db", secret={"password": "second"}, cas=1)
assert w2["data"]["version"] == 2, w2
latest = kv.read_secret_version(path="app/db")
assert latest["data"]["data"] == {"password": "second"}, latest
assert latest["data"]["metadata"]["version"] == 2
v1 = kv.read_secret_version(path="app/db", version=1)
assert v1["data"]["data"]["password"] == planted
step("kv create read versions")

# CAS conflict
e = expect_raises(exceptions.InvalidRequest, kv.create_or_update_secret, path="app/db", secret={"x": "y"}, cas=1)
assert "check-and-set parameter did not match the current version" in str(e), str(e)
step("kv cas conflict")

# delete latest, undelete, destroy
kv.delete_latest_version_of_secret(path="app/db")
expect_raises(exceptions.InvalidPath, kv.read_secret_version, path="app/db")
kv.undelete_secret_versions(path="app/db", versions=[2])
assert kv.read_secret_version(path="app/db")["data"]["data"] == {"password": "second"}
kv.delete_secret_versions(path="app/db", versions=[1])
expect_raises(exceptions.InvalidPath, kv.read_secret_version, path="app/db", version=1)
kv.destroy_secret_versions(path="app/db", versions=[1])
meta = kv.read_secret_metadata(path="app/db")["data"]
assert meta["versions"]["1"]["destroyed"] is True, meta
assert meta["versions"]["2"]["destroyed"] is False
assert meta["current_version"] == 2
step("kv delete undelete destroy")

# metadata update and list (hvac sends the LIST method)
kv.update_metadata(path="app/db", max_versions=5, cas_required=False)
# hvac 0.11.2 predates custom_metadata: a plain write of the metadata path sets it.
client.write("secret/metadata/app/db", custom_metadata={"owner": "ops"})
meta = kv.read_secret_metadata(path="app/db")["data"]
assert meta["max_versions"] == 5 and meta["custom_metadata"] == {"owner": "ops"}, meta
kv.create_or_update_secret(path="app/cache", secret={"url": "redis://cache"})
assert kv.list_secrets(path="app")["data"]["keys"] == ["cache", "db"]
assert kv.list_secrets(path="")["data"]["keys"] == ["app/"]
kv.configure(max_versions=20)
assert kv.read_configuration()["data"]["max_versions"] == 20
step("kv metadata list config")

# token with a policy; a forbidden read; revoke
client.sys.create_or_update_policy(
    name="app-reader",
    policy='path "secret/data/app/*" { capabilities = ["read"] }',
)
created = client.auth.token.create(policies=["app-reader"], ttl="1h")
child = created["auth"]["client_token"]
assert sorted(created["auth"]["policies"]) == ["app-reader", "default"], created["auth"]
reader = hvac.Client(url=addr, token=child)
assert reader.secrets.kv.v2.read_secret_version(path="app/cache")["data"]["data"]["url"] == "redis://cache"
kv.create_or_update_secret(path="ops/root", secret={"k": "v"})
expect_raises(exceptions.Forbidden, reader.secrets.kv.v2.read_secret_version, path="ops/root")
expect_raises(exceptions.Forbidden, reader.secrets.kv.v2.create_or_update_secret, path="app/cache", secret={"a": "b"})
step("token policy forbidden")
client.auth.token.revoke(child)
expect_raises(exceptions.Forbidden, reader.auth.token.lookup_self)
step("token revoke")

# response wrapping: a wrapped read, unwrapped once
wrapped = client.read("secret/data/app/db", wrap_ttl="60s")
assert wrapped["data"] is None and wrapped["wrap_info"]["ttl"] == 60, wrapped
wtoken = wrapped["wrap_info"]["token"]
assert wrapped["wrap_info"]["creation_path"] == "secret/data/app/db"
unwrapped = client.sys.unwrap(wtoken)
assert unwrapped["data"]["data"] == {"password": "second"}, unwrapped
expect_raises(exceptions.InvalidRequest, client.sys.unwrap, wtoken)
# A wrapped token creation: the unwrapped auth block holds a working token.
wt = client.auth.token.create(policies=["app-reader"], ttl="1h", wrap_ttl="120s")
assert wt["auth"] is None and wt["wrap_info"]["wrapped_accessor"], wt
holder = hvac.Client(url=addr, token=wt["wrap_info"]["token"])
inner = holder.sys.unwrap()
holder.token = inner["auth"]["client_token"]
assert holder.secrets.kv.v2.read_secret_version(path="app/cache")["data"]["data"]["url"] == "redis://cache"
step("wrap unwrap")

# KV v1 mount through sys/mounts
client.sys.enable_secrets_engine(backend_type="kv", path="legacy", options={"version": "1"})
mounts = client.sys.list_mounted_secrets_engines()
assert mounts["data"]["legacy/"]["options"]["version"] == "1", mounts["data"]["legacy/"]
client.secrets.kv.v1.create_or_update_secret(path="conf", secret={"broker": "mqtt://b"}, mount_point="legacy")
assert client.secrets.kv.v1.read_secret(path="conf", mount_point="legacy")["data"] == {"broker": "mqtt://b"}
assert client.secrets.kv.v1.list_secrets(path="", mount_point="legacy")["data"]["keys"] == ["conf"]
step("kv v1 mount")

# seal
client.sys.seal()
assert client.sys.is_sealed() is True
expect_raises(exceptions.VaultDown, kv.read_secret_version, path="app/cache")
step("seal")
print("ALL OK")
sys.exit(0)
