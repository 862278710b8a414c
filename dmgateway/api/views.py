"""The JSON views of the REST API: store rows as DESIGN §4 shows them.

The handlers (:mod:`dmgateway.handlers`) build every representation they
return with these; secrets never reach a view (a job's ``AAuthSecret``
data is shown as ``(secret)``, a device's secrets are not in its row).
"""

from typing import Any, Dict, Iterable

from dmgateway.auth.nonce import encode_nonce
from dmgateway.bootstrap import read_push
from dmgateway.live import iso_time


def device_view(device: Any) -> Dict[str, Any]:
    """A device row (:class:`~dmgateway.store.model.Device`) without its secrets."""
    def auth(a):
        return {"type": a.type, "name": a.name, "nonce": encode_nonce(a.nonce or b"")}

    return {
        "device_id": device.device_id,
        "server_id": device.server_id,
        "client_auth": auth(device.client_auth),
        "server_auth": auth(device.server_auth),
        "msisdn": device.msisdn,
        "sip_uri": device.sip_uri,
        "imsi": device.imsi,
        "devinfo": device.devinfo,
        "reported": device.reported or {},
        "device_challenge": device.device_challenge,
        "last_session": device.last_session,
        "created": iso_time(device.created),
        "updated": iso_time(device.updated),
    }


def job_view(job: Any, notifications: Iterable[Any]) -> Dict[str, Any]:
    """A job with its results and the wake-ups sent for it (secrets redacted)."""
    view = {
        "id": job.job_id,
        "device_id": job.device_id,
        "state": job.state,
        "commands": _redacted(job.commands),
        "atomic": job.atomic,
        "notify": job.notify,
        "ui_mode": job.ui_mode,
        "results": job.results,
        "notifications": [notification_view(n) for n in notifications],
        "created": iso_time(job.created),
        "updated": iso_time(job.updated),
    }
    if job.state in ("failed", "expired"):
        view["error"] = job.error or {"code": job.state, "message": "job %s" % (job.state,)}
    return view


def _redacted(commands):
    """Job commands for a view: the data of an ``.../AAuthSecret`` leaf is never
    shown, also inside a Sequence."""
    out = []
    for command in commands:
        if not isinstance(command, dict):
            out.append(command)
            continue
        target = str(command.get("target", ""))
        if target.split("?", 1)[0].rstrip("/").endswith("/AAuthSecret") and "data" in command:
            command = dict(command, data="(secret)")
        if isinstance(command.get("commands"), list):
            command = dict(command, commands=_redacted(command["commands"]))
        out.append(command)
    return out


def notification_view(n: Any) -> Dict[str, Any]:
    """One wake-up of a job: bearer, state, attempts, last error."""
    return {
        "bearer": n.bearer,
        "state": n.state,
        "attempts": n.attempts,
        "last_error": n.last_error,
        "message_id": n.message_id,
    }


def event_view(event: Dict[str, Any]) -> Dict[str, Any]:
    """An event with its time as ISO 8601."""
    view = dict(event)
    if isinstance(view.get("time"), (int, float)):
        view["time"] = iso_time(view["time"])
    return view


def bootstrap_view(n: Any) -> Dict[str, Any]:
    """A bootstrap push in the device view: its notification and what it carried."""
    view = {"id": n.notification_id, "bearer": n.bearer, "state": n.state,
            "attempts": n.attempts, "last_error": n.last_error, "message_id": n.message_id}
    try:
        boot = read_push(n.payload)
        view.update(profile=boot.profile, sec=boot.sec or "none")
    except ValueError:
        pass
    return view
