"""The KEDA HTTP add-on as slm-deploy uses it: the pinned release, its chart's names and ports, the routing host.

Read from the add-on's sources at release v0.13.0 (github.com/kedacore/http-add-on): the HTTPScaledObject CRD
(``config/crd/bases/http.keda.sh_httpscaledobjects.yaml``) and its reference
(``docs/ref/v0.13.0/http_scaled_object.md``, which documents the ``skip-scaledobject-creation`` annotation); the
chart's names from github.com/kedacore/charts ``http-add-on/templates/interceptor/service-proxy.yaml`` and
``_helpers.tpl``. docs/scale-to-zero.md says how the parts fit.
"""

from __future__ import annotations

#: The add-on's chart and version (chart and app versions move together), installed in KEDA's namespace.
HTTP_ADD_ON_CHART = "keda-add-ons-http"
HTTP_ADD_ON_REPOSITORY = "https://kedacore.github.io/charts"
HTTP_ADD_ON_VERSION = "0.13.0"
HTTP_ADD_ON_RELEASE = "http-add-on"
HTTP_SCALED_OBJECT_API = "http.keda.sh/v1alpha1"

#: ``<chart name>-<interceptor.proxy.service>``: the Service that takes the requests and holds them while a
#: replica starts; its port is ``interceptor.proxy.port`` (set explicitly in the release's values).
INTERCEPTOR_PROXY_SERVICE = f"{HTTP_ADD_ON_CHART}-interceptor-proxy"
INTERCEPTOR_PROXY_PORT = 8080
#: The interceptor's pods (component label, and the chart's ``part-of`` match label).
INTERCEPTOR_POD_LABELS = {"app.kubernetes.io/component": "interceptor", "app.kubernetes.io/part-of": HTTP_ADD_ON_CHART}
#: ``<chart name>-<scaler.service>``: the external scaler KEDA asks for the interceptor's pending requests.
EXTERNAL_SCALER_SERVICE = f"{HTTP_ADD_ON_CHART}-external-scaler"
EXTERNAL_SCALER_PORT = 9090
#: On an HTTPScaledObject: the add-on routes and counts but creates no ScaledObject of its own, so the model's one
#: ScaledObject keeps its queue trigger and adds the add-on's (KEDA allows one ScaledObject per workload).
SKIP_SCALED_OBJECT_ANNOTATION = "httpscaledobject.keda.sh/skip-scaledobject-creation"


def interceptor_host(service: str, namespace: str) -> str:
    """The ``Host`` the interceptor routes a model's requests by: its Service's cluster DNS name.

    The gateway rewrites the Host to it; a client inside the cluster sends it to the interceptor's Service.
    """
    return f"{service}.{namespace}.svc.cluster.local"


def external_scaler_address(namespace: str) -> str:
    return f"{EXTERNAL_SCALER_SERVICE}.{namespace}:{EXTERNAL_SCALER_PORT}"
