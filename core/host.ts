import { hostname } from "node:os";

/** Where the run runs: the pod's name in Kubernetes (HOSTNAME), else the machine's. */
export function hostName(): string {
  return process.env.HOSTNAME?.trim() || hostname();
}
