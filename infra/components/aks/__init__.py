"""AKS: resource group and network, the hardened cluster, GPU node pools and the GPU drivers on them.

Import the components from their modules (``infra.components.aks.cluster`` …); this package module stays
free of Pulumi imports.
"""
