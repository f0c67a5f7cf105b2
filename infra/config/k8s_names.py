"""The syntax rules that the API server (and the registries, hubs and engines we hand names to) apply.

Each rule is a :class:`NameRule`: ``problem(value)`` is ``None`` when the value is accepted, otherwise a
short reason (too long, a bad character, a bad first or last character). Every regular expression is
matched with ``re.fullmatch``: ``$`` would also match before a trailing newline, and a name ending in a
newline is not a name.

The rules come from Kubernetes' ``apimachinery/pkg/util/validation`` (DNS-1123 labels and subdomains,
DNS-1035 labels, label keys and values), the OCI distribution reference grammar (image repositories,
tags, digests), ``huggingface_hub``'s repository id check, Ollama's model name parser, and Azure's
naming rules for Key Vault secrets and federated identity credentials.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

#: A DNS-1123 label: namespaces, and (by convention and for pod host names) most object names.
MAX_LABEL = 63
#: A DNS-1123 subdomain: ConfigMap, Secret, Deployment, PersistentVolumeClaim … names.
MAX_SUBDOMAIN = 253

_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
#: A label value, and the name part of a label key (which may not be empty).
_LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?")
#: A key of a Secret's or ConfigMap's data.
_DATA_KEY = re.compile(r"[-._a-zA-Z0-9]+")

# OCI distribution reference grammar (github.com/distribution/reference, regexp.go).
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*")
_DOMAIN_ONLY = re.compile(_DOMAIN)
_PATH_ONLY = re.compile(rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST = re.compile(r"sha256:[a-f0-9]{64}")
#: The longest repository name a registry accepts.
MAX_REPOSITORY = 255

# huggingface_hub.utils._validators.validate_repo_id (ASCII: Python's \w would take any letter).
_HF_PART = r"[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?"
_HF_REPO_ID = re.compile(rf"(?:{_HF_PART}/)?{_HF_PART}")
MAX_HF_REPO_NAME = 96

# Ollama's model names (types/model/name.go): [host/][namespace/]model[:tag].
_OLLAMA_HOST = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,349}")
_OLLAMA_NAMESPACE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,79}")
_OLLAMA_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}")

#: Azure Key Vault secret names: letters, digits and dashes, 1 to 127.
_KEY_VAULT_SECRET = re.compile(r"[0-9a-zA-Z-]{1,127}")
#: Azure federated identity credential names: 3 to 120, a letter or digit first.
_FEDERATED_CREDENTIAL = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_-]{2,119}")

#: Characters that no name, id or argument value of ours may contain (they end a line or are invisible).
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _length(value: str, limit: int) -> str | None:
    if len(value) > limit:
        return f"{len(value)} characters, at most {limit} allowed"
    return None


def _shape(value: str, first: str, first_ok: Callable[[str], bool], chars: str, ok: Callable[[str], bool]) -> str:
    """The first thing wrong with ``value``: a bad character, a bad first or last character."""
    if not value:
        return "it is empty"
    bad = next((c for c in value if not ok(c)), None)
    if bad is not None:
        return f"{show(bad)} is not allowed (only {chars} are)"
    if not first_ok(value[0]):
        return f"it must start with {first}"
    return "it must end with a letter or digit"


def _lower_alnum(c: str) -> bool:
    return c.isascii() and (c.islower() or c.isdigit())


@dataclass(frozen=True)
class NameRule:
    """A syntax rule for one kind of name."""

    #: What the value must be, as a message says it ("a DNS-1123 label").
    title: str
    #: The rule in a few words, for the message ("at most 63 lower-case letters, digits and '-' …").
    summary: str
    check: Callable[[str], str | None]

    def problem(self, value: str) -> str | None:
        """``None`` when ``value`` follows the rule, else a short reason."""
        return self.check(value)

    def describe(self) -> str:
        return f"{self.title} ({self.summary})"


def _dns1123_label(value: str) -> str | None:
    if _DNS1123_LABEL.fullmatch(value) and len(value) <= MAX_LABEL:
        return None
    return _length(value, MAX_LABEL) or _shape(
        value,
        "a lower-case letter or digit",
        _lower_alnum,
        "lower-case letters, digits and '-'",
        lambda c: _lower_alnum(c) or c == "-",
    )


def _dns1035_label(value: str) -> str | None:
    if _DNS1035_LABEL.fullmatch(value) and len(value) <= MAX_LABEL:
        return None
    return _length(value, MAX_LABEL) or _shape(
        value,
        "a lower-case letter",
        lambda c: c.isascii() and c.islower(),
        "lower-case letters, digits and '-'",
        lambda c: _lower_alnum(c) or c == "-",
    )


def _dns1123_subdomain(value: str) -> str | None:
    if _DNS1123_SUBDOMAIN.fullmatch(value) and len(value) <= MAX_SUBDOMAIN:
        return None
    if too_long := _length(value, MAX_SUBDOMAIN):
        return too_long
    for part in value.split("."):
        if not part:
            return "it has an empty part between dots"
        if problem := _dns1123_label(part):
            return problem
    return "it is not a DNS subdomain"


def _label_value(value: str) -> str | None:
    if _LABEL_VALUE.fullmatch(value) and len(value) <= MAX_LABEL:
        return None
    return _length(value, MAX_LABEL) or _shape(
        value,
        "a letter or digit",
        lambda c: c.isascii() and c.isalnum(),
        "letters, digits, '-', '_' and '.'",
        lambda c: c.isascii() and (c.isalnum() or c in "-_."),
    )


def _label_key(key: str) -> str | None:
    prefix, slash, name = key.rpartition("/")
    if slash and (problem := _dns1123_subdomain(prefix)):
        return f"its prefix '{prefix}': {problem}"
    if not name:
        return "its name part is empty"
    return _label_value(name)


def _data_key(value: str) -> str | None:
    if _DATA_KEY.fullmatch(value) and len(value) <= MAX_SUBDOMAIN:
        return None
    return _length(value, MAX_SUBDOMAIN) or _shape(
        value,
        "",
        lambda _c: True,
        "letters, digits, '-', '_' and '.'",
        lambda c: c.isascii() and (c.isalnum() or c in "-_."),
    )


def _image_repository(value: str) -> str | None:
    if _REPOSITORY.fullmatch(value) and len(value) <= MAX_REPOSITORY:
        return None
    if too_long := _length(value, MAX_REPOSITORY):
        return too_long
    if _CONTROL.search(value) or " " in value:
        return "it contains a space or a control character"
    if ":" in value.rpartition("/")[2] or "@" in value:
        return "the tag and digest go in 'tag' and 'digest', not in the repository"
    first, slash, rest = value.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        if not _DOMAIN_ONLY.fullmatch(first):
            return f"'{first}' is not a registry host name (with an optional :port)"
        path = rest
    else:
        path = value
    if path != path.lower():
        return "the path after the registry must be lower-case"
    if not _PATH_ONLY.fullmatch(path):
        return (
            "each '/'-separated part of the path must be lower-case letters and digits, joined by single '.', "
            "'_' or '__', or by dashes"
        )
    return "it is not an image repository"


def _image_tag(value: str) -> str | None:
    if _TAG.fullmatch(value):
        return None
    return _length(value, 128) or _shape(
        value,
        "a letter, digit or '_'",
        lambda c: c.isascii() and (c.isalnum() or c == "_"),
        "letters, digits, '_', '.' and '-'",
        lambda c: c.isascii() and (c.isalnum() or c in "_.-"),
    )


def _image_digest(value: str) -> str | None:
    if _DIGEST.fullmatch(value):
        return None
    return "it must be sha256: followed by 64 lower-case hex digits"


def _hf_repo_id(value: str) -> str | None:
    if value.count("/") > 1:
        return "it has more than one '/' (a repository id is 'name' or 'organisation/name')"
    if not _HF_REPO_ID.fullmatch(value):
        return (
            "each part may use only letters, digits, '_', '-' and '.', and must start and end with a letter, "
            "digit or '_'"
        )
    if len(value.rpartition("/")[2]) > MAX_HF_REPO_NAME:
        return f"the name after '/' has more than {MAX_HF_REPO_NAME} characters"
    if "--" in value or ".." in value:
        return "'--' and '..' are not allowed"
    if value.endswith(".git"):
        return "it must not end with '.git'"
    return None


def _model_path(value: str) -> str | None:
    """An absolute path inside the container (a model the operator put in the cache volume)."""
    if _CONTROL.search(value) or " " in value:
        return "it contains a space or a control character"
    if any(part in (".", "..") for part in value.split("/")):
        return "'.' and '..' are not allowed in the path"
    return None


def _vllm_model(value: str) -> str | None:
    if value.startswith("/"):
        return _model_path(value)
    return _hf_repo_id(value)


def _ollama_name(value: str) -> str | None:
    if _CONTROL.search(value) or " " in value:
        return "it contains a space or a control character"
    rest = value.removeprefix("https://").removeprefix("http://")
    if rest.rfind(":") > rest.rfind("/"):
        rest, _, tag = rest.rpartition(":")
        if not _OLLAMA_PART.fullmatch(tag):
            return (
                f"the tag '{tag}' must be 1 to 80 letters, digits, '_', '.' or '-', starting with a letter, digit "
                "or '_'"
            )
    parts = rest.split("/")
    if len(parts) > 3:
        return "it has more than three '/'-separated parts ([host/][namespace/]model)"
    *prefix, model = parts
    if not _OLLAMA_PART.fullmatch(model):
        return (
            f"the model name '{model}' must be 1 to 80 letters, digits, '_', '.' or '-', starting with a letter, "
            "digit or '_'"
        )
    if prefix and not _OLLAMA_NAMESPACE.fullmatch(prefix[-1]):
        return f"the namespace '{prefix[-1]}' must be 1 to 80 letters, digits, '_' or '-' (no '.')"
    if len(prefix) == 2 and not _OLLAMA_HOST.fullmatch(prefix[0]):
        return f"the host '{prefix[0]}' is not a registry host name"
    return None


def _served_name(value: str) -> str | None:
    if not value:
        return "it is empty"
    if _CONTROL.search(value) or value != value.strip():
        return "it contains a control character, or starts or ends with a space"
    if '"' in value or "\\" in value:
        return "'\"' and '\\' are not allowed (the name is matched in Prometheus queries)"
    return None


def _key_vault_secret(value: str) -> str | None:
    if _KEY_VAULT_SECRET.fullmatch(value):
        return None
    return _length(value, 127) or "only letters, digits and '-' are allowed"


def _federated_credential(value: str) -> str | None:
    if _FEDERATED_CREDENTIAL.fullmatch(value):
        return None
    return _length(value, 120) or "only letters, digits, '-' and '_' (3 or more, a letter or digit first)"


DNS_LABEL = NameRule(
    "a DNS-1123 label",
    "at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit",
    _dns1123_label,
)
#: Service names: a DNS-1035 label, which must start with a letter.
DNS_1035_LABEL = NameRule(
    "a DNS-1035 label", "at most 63 lower-case letters, digits and '-', starting with a letter", _dns1035_label
)
DNS_SUBDOMAIN = NameRule(
    "a DNS-1123 subdomain", "at most 253 characters: DNS-1123 labels joined by '.'", _dns1123_subdomain
)
LABEL_VALUE = NameRule(
    "a label value",
    "at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit",
    _label_value,
)
LABEL_KEY = NameRule(
    "a label key",
    "an optional DNS subdomain prefix and '/', then at most 63 letters, digits, '-', '_' and '.', starting and "
    "ending with a letter or digit",
    _label_key,
)
#: A Secret's data key: it also names the file when the Secret is mounted.
DATA_KEY = NameRule("a Secret data key", "letters, digits, '-', '_' and '.'", _data_key)
IMAGE_REPOSITORY = NameRule(
    "an image repository",
    "an optional registry host[:port]/, then lower-case path parts separated by '/'",
    _image_repository,
)
IMAGE_TAG = NameRule(
    "an image tag", "at most 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'", _image_tag
)
IMAGE_DIGEST = NameRule("an image digest", "sha256: and 64 lower-case hex digits", _image_digest)
HF_REPO_ID = NameRule("a Hugging Face repository id", "'organisation/name' or 'name'", _hf_repo_id)
VLLM_MODEL = NameRule(
    "a Hugging Face repository id or an absolute path",
    "'organisation/name', or a folder such as /models/…",
    _vllm_model,
)
OLLAMA_MODEL = NameRule("an Ollama model name", "[host/][namespace/]model[:tag], e.g. qwen3:0.6b", _ollama_name)
SERVED_MODEL_NAME = NameRule(
    "a served model name", "no control characters, quotes or backslashes, no leading or trailing space", _served_name
)
KEY_VAULT_SECRET = NameRule("a Key Vault secret name", "at most 127 letters, digits and '-'", _key_vault_secret)
FEDERATED_CREDENTIAL = NameRule(
    "a federated identity credential name", "3 to 120 letters, digits, '-' and '_'", _federated_credential
)

#: Namespaces Kubernetes itself owns: a stack never creates, labels or deletes them.
RESERVED_NAMESPACES = ("default", "kube-node-lease", "kube-public", "kube-system")


def show(value: str, limit: int = 80) -> str:
    """``value`` quoted for a one-line message: control characters escaped, a long value shortened."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in value)
    if len(text) > limit:
        text = f"{text[: limit - 20]}…{text[-19:]}"
    return f"'{text}'"


def refuse(rule: NameRule, value: str, what: str = "") -> str:
    """``value`` when it follows ``rule``; else ``ValueError`` saying which rule and why."""
    problem = rule.problem(value)
    if problem is None:
        return value
    subject = f"{what} {show(value)}" if what else show(value)
    raise ValueError(f"{subject} is not {rule.title}: {problem} ({rule.summary})")
