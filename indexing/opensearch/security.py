"""The OpenSearch security plugin on the managed node: TLS on HTTP and transport, basic auth,
and two users, with certificates made by openssl in the node's folder.

The distribution mixes versions in one place, on purpose. `opensearch-security` 3.4.0.0 (the
only 3.x release of the plugin on Maven Central) extends the core module `rule-framework`,
and OpenSearch refuses to load a plugin whose extended plugin is absent. The 3.4.0 core zip on
Maven Central does not carry that module and its jars are published nowhere else, but the
3.6.0 core zip carries it (`modules/rule-framework/`). So the secure distribution is the 3.4.0
one plus that module folder taken from the 3.6.0 zip, every jar checked against a pinned
SHA-256 and the descriptor rewritten for 3.4.0. It works because of what the security plugin
uses of it: four classes of its 724 (`org.opensearch.security.auth.Principal*`) implement
the module's SPI (`AttributesExtension.getAttribute`, `Attribute.getName`, `AttributeExtractor`)
for the workload-management feature, which this node does not run; the 3.6.0 interfaces have
the same abstract methods, and a 3.4.0 node with that module starts, initialises security and
answers (tests/engine/test_security_plugin.py). Why 3.6.0: the 3.5.0 core zip carries the
same module with byte-identical classes (only the jars' manifests differ), but it is 33 MB larger
and Maven Central publishes no checksum for it; the 3.3.2 and 3.4.0 core zips carry only the
transport modules.

Layout under the node's folder (`nodes/<port>/`):

    tls/            ca.pem (what clients pass as --ca-certs), node.pem, node-key.pem
    credentials/    <user>.password, admin.pem, admin-key.pem: mode 0700/0600, owned by the
                    user who started the node, never by the node's own (unprivileged) user
    security/       the plugin's config (hashed passwords, roles), copied into config/ at start

The CA's key is deleted once the node's and the admin's certificates are signed: nothing else
can then be issued under the CA that clients are told to trust. Delete the node's folder to
start again with new certificates and passwords.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import string
import subprocess
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from indexing.artifacts import Artifact
from indexing.opensearch.modules import DESCRIPTOR, ModuleRecipe, plugin_descriptor
from sparse_mm.errors import ConfigError, EngineError

SECURITY_PLUGIN = "opensearch-security"
RULE_FRAMEWORK = "rule-framework"
RULE_FRAMEWORK_DONOR = "3.6.0"  # the core zip the rule-framework module is taken from
ADMIN_PASSWORD_ENV = "OPENSEARCH_INITIAL_ADMIN_PASSWORD"  # the official image's variable
ADMIN, READER = "admin", "reader"
READ_ROLE = "sparse_mm_read"
NODE_DN = "CN=node,O=sparse-mm"
ADMIN_DN = "CN=admin,O=sparse-mm"
CERT_DAYS = 3650  # a local development node; delete its folder to renew

# SHA-256 of the files of the pinned versions; each equals the SHA-256 Maven Central publishes
# beside the file (the jars: as found in the donor zip, whose own digest is pinned).
# fmt: off
_PINNED_SHA256 = {
    "opensearch-security-3.4.0.0.zip": "fc164c084979f7f793d295b6bca56bf8bee76dafb762adef9f14fa872e0a7596",  # noqa: E501
    "opensearch-3.6.0.zip": "a91faa1dc1cadc78cb278b4f63847e19e1627a4e9de698e14e7efc14ee37b286",
}
_RULE_FRAMEWORK_JARS = {
    "rule-framework-3.6.0.jar": "f6d92b1a6b9db41156d91c8e68ba4c462503cdfc899ca22a9b0ac607a4f80005",
    "common-3.6.0.jar": "b7992330b8a85cf99cd54d35f02dd89f86fb5d13ee3774442df6fa8f73c3d4ad",
    "autotagging-commons-spi-3.6.0.jar": "5034020540bdc989193a709e118a6e17617864875e844d65b199cce6096c3023",  # noqa: E501
    "commons-collections4-4.5.0.jar": "00f93263c267be201b8ae521b44a7137271b16688435340bf629db1bac0a5845",  # noqa: E501
}
# fmt: on
# the `read` action group (search, get, search templates) and what a query looks up first
_READ_ACTIONS = ["read", "indices:admin/get", "indices:admin/mappings/get"]
_SECURITY_FOR = {"3.4.0": "3.4.0.0"}  # OpenSearch version -> security plugin version

RULE_FRAMEWORK_RECIPE = ModuleRecipe(
    name=RULE_FRAMEWORK,
    description="OpenSearch Rule Framework plugin (jars of the 3.6.0 core zip)",
    classname="org.opensearch.rule.RuleFrameworkPlugin",
    jars=(),
)


def security_artifacts(version: str) -> list[Artifact]:
    """The security plugin for OpenSearch `version` and the core zip its module comes from."""
    if version not in _SECURITY_FOR:
        raise ConfigError(
            f"sparse-mm can run the security plugin on OpenSearch {sorted(_SECURITY_FOR)} only, "
            f"not {version}"
        )
    artifacts = [
        Artifact("org.opensearch.plugin", SECURITY_PLUGIN, _SECURITY_FOR[version], "zip"),
        Artifact(
            "org.opensearch.distribution.integ-test-zip", "opensearch", RULE_FRAMEWORK_DONOR, "zip"
        ),
    ]
    return [
        Artifact(a.group, a.name, a.version, a.packaging, _PINNED_SHA256[a.filename])
        for a in artifacts
    ]


def install_rule_framework(root: Path, donor_zip: Path, version: str, java_version: str) -> Path:
    """Copy `modules/rule-framework/` from `donor_zip` into `root/modules/`, checking each jar
    against its pinned digest, with a descriptor for OpenSearch `version`."""
    folder = root / "modules" / RULE_FRAMEWORK
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(donor_zip) as zf:
        members = {
            Path(name).name: name
            for name in zf.namelist()
            if f"/modules/{RULE_FRAMEWORK}/" in name and name.endswith(".jar")
        }
        if set(members) != set(_RULE_FRAMEWORK_JARS):
            raise EngineError(
                f"{donor_zip.name} has jars {sorted(members)} in modules/{RULE_FRAMEWORK}, "
                f"expected {sorted(_RULE_FRAMEWORK_JARS)}"
            )
        for jar, member in members.items():
            data = zf.read(member)
            if hashlib.sha256(data).hexdigest() != _RULE_FRAMEWORK_JARS[jar]:
                raise EngineError(f"{jar} in {donor_zip.name} does not match its pinned SHA-256")
            (folder / jar).write_bytes(data)
    descriptor = plugin_descriptor(RULE_FRAMEWORK_RECIPE, version, java_version)
    (folder / DESCRIPTOR).write_text(descriptor)
    return folder


# ---------------------------------------------------------------------------- configuration
def security_settings() -> dict[str, object]:
    """opensearch.yml settings of a secured single node (paths relative to its config/)."""
    tls = {"pemcert_filepath": "node.pem", "pemkey_filepath": "node-key.pem"}
    tls["pemtrustedcas_filepath"] = "ca.pem"
    settings: dict[str, object] = {}
    for layer in ("transport", "http"):
        settings.update({f"plugins.security.ssl.{layer}.{k}": v for k, v in tls.items()})
    return {
        **settings,
        "plugins.security.ssl.http.enabled": True,
        # node and client certificates name 127.0.0.1, not a host name
        "plugins.security.ssl.transport.enforce_hostname_verification": False,
        "plugins.security.nodes_dn": [NODE_DN],
        "plugins.security.authcz.admin_dn": [ADMIN_DN],
        # the first start writes the users and roles of config/opensearch-security/ to the
        # security index; later starts keep what the index holds
        "plugins.security.allow_default_init_securityindex": True,
        "plugins.security.restapi.roles_enabled": ["all_access"],
        "plugins.security.audit.type": "noop",
    }


def _document(kind: str, entries: dict) -> str:
    # JSON is YAML; the plugin reads these files with a YAML parser
    return json.dumps({"_meta": {"type": kind, "config_version": 2}, **entries}, indent=2) + "\n"


def internal_users_yml(hashes: dict[str, str]) -> str:
    """internal_users.yml for `hashes` (user -> bcrypt hash)."""
    described = {ADMIN: "all access (sparse-mm)", READER: "read-only (sparse-mm)"}
    return _document(
        "internalusers",
        {
            user: {"hash": hashes[user], "reserved": False, "description": described[user]}
            for user in (ADMIN, READER)
        },
    )


def roles_yml() -> str:
    """The read-only role: search and read every index, look at mappings and the cluster's state;
    no write, no index creation, no template or settings change."""
    return _document(
        "roles",
        {
            READ_ROLE: {
                "reserved": False,
                "description": "search and read every index (sparse-mm)",
                "cluster_permissions": ["cluster_composite_ops_ro", "cluster_monitor"],
                "index_permissions": [{"index_patterns": ["*"], "allowed_actions": _READ_ACTIONS}],
            }
        },
    )


def roles_mapping_yml() -> str:
    """admin gets the plugin's built-in all_access, reader the read-only role; nothing else
    (the plugin's sample mapping gives every user an index of its own name)."""
    return _document(
        "rolesmapping",
        {
            "all_access": {"reserved": False, "users": [ADMIN]},
            READ_ROLE: {"reserved": False, "users": [READER]},
        },
    )


# ---------------------------------------------------------------------------- node files
@dataclass(frozen=True)
class SecurityFiles:
    """Where one secured node keeps its certificates, credentials and security config."""

    node_dir: Path

    @property
    def tls(self) -> Path:
        return self.node_dir / "tls"

    @property
    def credentials(self) -> Path:
        return self.node_dir / "credentials"

    @property
    def config(self) -> Path:
        return self.node_dir / "security"

    @property
    def ca(self) -> Path:
        return self.tls / "ca.pem"

    def password_file(self, user: str) -> Path:
        return self.credentials / f"{user}.password"

    def read_password(self, user: str) -> str:
        return self.password_file(user).read_text().splitlines()[0]

    @property
    def ready(self) -> bool:
        return (self.config / "internal_users.yml").is_file() and self.ca.is_file()

    def prepare(self, dist: Path, java: Path, progress=lambda _m: None) -> None:
        """Certificates, passwords and security config, made once; later calls do nothing.
        Built in a temporary folder and moved into place, so an interrupted first start
        leaves nothing half-made."""
        if self.ready:
            return
        progress(f"creating certificates and users for the secured node in {self.node_dir}")
        self.node_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".security-", dir=self.node_dir))
        try:
            made = SecurityFiles(staging)
            made.tls.mkdir()
            made.credentials.mkdir(mode=0o700)
            made.config.mkdir()
            make_certificates(made.tls, made.credentials)
            passwords = {ADMIN: os.environ.get(ADMIN_PASSWORD_ENV) or _new_password()}
            passwords[READER] = _new_password()
            for user, password in passwords.items():
                _write_private(made.password_file(user), password + "\n")
            hashes = {user: hash_password(dist, java, pw) for user, pw in passwords.items()}
            self._write_config(dist, made.config, hashes)
            for sub in ("tls", "credentials", "security"):
                shutil.rmtree(self.node_dir / sub, ignore_errors=True)
                (staging / sub).rename(self.node_dir / sub)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    @staticmethod
    def _write_config(dist: Path, folder: Path, hashes: dict[str, str]) -> None:
        # the plugin's own defaults for the files sparse-mm does not write (config.yml:
        # basic auth against the internal users; action groups, tenants, audit, allowlist)
        defaults = dist / "config" / SECURITY_PLUGIN
        for path in defaults.glob("*.yml"):
            shutil.copyfile(path, folder / path.name)
        (folder / "internal_users.yml").write_text(internal_users_yml(hashes))
        (folder / "roles.yml").write_text(roles_yml())
        (folder / "roles_mapping.yml").write_text(roles_mapping_yml())

    def install(self, config_dir: Path) -> None:
        """Put the node's certificates and security config into its fresh config folder."""
        for name in ("ca.pem", "node.pem", "node-key.pem"):
            shutil.copyfile(self.tls / name, config_dir / name)
        target = config_dir / SECURITY_PLUGIN
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(self.config, target)
        # the plugin warns at start about a config folder others can read
        for path in (config_dir, *config_dir.rglob("*")):
            path.chmod(0o700 if path.is_dir() else 0o600)


def _new_password() -> str:
    # letters and digits only: nothing a shell or an option parser could misread
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(24))


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)


def hash_password(dist: Path, java: Path, password: str) -> str:
    """The bcrypt hash of `password`, by the plugin's own Hasher; the password goes to it in
    an environment variable of its process only, never on a command line."""
    plugin = dist / "plugins" / SECURITY_PLUGIN
    classpath = f"{plugin}/*:{plugin}/deps/*:{dist}/lib/*"
    variable = "SPARSE_MM_HASH_INPUT"
    done = subprocess.run(
        [str(java), "-cp", classpath, "org.opensearch.security.tools.Hasher", "-env", variable],
        env={"PATH": os.environ.get("PATH", ""), variable: password},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines or not lines[-1].startswith("$2"):
        detail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise EngineError(f"the security plugin's password hasher failed: {detail[:200]}")
    return lines[-1]


def certificate_extensions(kind: str) -> str:
    """The openssl extension section of the node's (`node`) or admin's (`admin`) certificate:
    the node's serves HTTPS on 127.0.0.1 and authenticates on the transport layer both ways."""
    usage = {"node": "serverAuth,clientAuth", "admin": "clientAuth"}[kind]
    lines = [
        "basicConstraints=critical,CA:FALSE",
        "keyUsage=critical,digitalSignature,keyEncipherment",
        f"extendedKeyUsage={usage}",
    ]
    if kind == "node":
        lines.append("subjectAltName=IP:127.0.0.1,DNS:localhost")
    return "\n".join(lines) + "\n"


def subject(dn: str) -> str:
    """openssl's `-subj` form of an RFC 2253 DN: 'CN=node,O=sparse-mm' -> '/O=sparse-mm/CN=node'."""
    return "".join(f"/{part}" for part in reversed(dn.split(",")))


def make_certificates(tls: Path, private: Path) -> None:
    """A CA, the node's certificate (in `tls`) and the admin's (in `private`), with openssl.
    Keys are PKCS#8 (`genpkey`), the form the plugin reads; the CA's key is not kept."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise EngineError("openssl is needed to make the secured node's certificates")

    def run(*args: object) -> None:
        done = subprocess.run(
            [openssl, *map(str, args)], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            detail = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise EngineError(f"openssl {args[0]} failed: {detail[:200]}")

    work = Path(tempfile.mkdtemp(prefix=".ca-", dir=private))
    try:
        ca_key = work / "ca-key.pem"
        run("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", ca_key)
        run("req", "-x509", "-new", "-key", ca_key, "-sha256", "-days", CERT_DAYS,
            "-subj", "/O=sparse-mm/CN=sparse-mm local CA", "-out", tls / "ca.pem")  # fmt: skip
        for kind, dn, folder in (("node", NODE_DN, tls), ("admin", ADMIN_DN, private)):
            key, csr, ext = folder / f"{kind}-key.pem", work / f"{kind}.csr", work / f"{kind}.ext"
            run("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", key)
            key.chmod(0o600)
            run("req", "-new", "-key", key, "-subj", subject(dn), "-out", csr)
            ext.write_text(certificate_extensions(kind))
            run("x509", "-req", "-in", csr, "-CA", tls / "ca.pem", "-CAkey", ca_key,
                "-set_serial", secrets.randbits(63), "-sha256", "-days", CERT_DAYS, "-extfile", ext,
                "-out", folder / f"{kind}.pem")  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)
