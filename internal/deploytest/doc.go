// Package deploytest checks what brisk ships for running at scale: the
// Kubernetes manifests in deploy/k8s (rendered with kustomize and decoded
// strictly into the Kubernetes API types), the NGINX edge in deploy/nginx
// (nginx -t, and a fleet of brisk instances behind a real nginx under
// failures), and the Dockerfile's build flags. It has tests only.
package deploytest
