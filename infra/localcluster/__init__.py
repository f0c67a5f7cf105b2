"""A local Kubernetes control plane on 127.0.0.1 for trying stacks without a cloud account, and for the tests.

``bash scripts/local-cluster.sh start|stop|status`` builds the tools (scripts/cluster-tools.sh) and runs
``python -m infra.localcluster``; :mod:`infra.localcluster.controlplane` does the work, and
:mod:`infra.localcluster.crds` makes the CRDs of the kinds slm-deploy renders. See docs/local-cluster.md.
"""
