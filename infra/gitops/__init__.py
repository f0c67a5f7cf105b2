"""GitOps helpers: render diffs between revisions, PR comments and CI pipeline templates."""
