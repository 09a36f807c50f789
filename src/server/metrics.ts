/** Request counters and latency sums, rendered in Prometheus text exposition format. */
export class Metrics {
  /** Per route: request counts by status, and the latency sum. */
  private readonly routes = new Map<string, { byStatus: Map<number, number>; sum: number; count: number }>();
  auditFailures = 0;
  private readonly started = Date.now();

  observe(route: string, status: number, ms: number): void {
    let r = this.routes.get(route);
    if (!r) {
      r = { byStatus: new Map(), sum: 0, count: 0 };
      this.routes.set(route, r);
    }
    r.byStatus.set(status, (r.byStatus.get(status) ?? 0) + 1);
    r.sum += ms / 1000;
    r.count++;
  }

  render(gauges: Record<string, number>): string {
    const out: string[] = [];
    out.push("# HELP fleetroot_http_requests_total HTTP requests by route and status.");
    out.push("# TYPE fleetroot_http_requests_total counter");
    for (const [route, r] of this.routes) {
      for (const [status, n] of r.byStatus)
        out.push(`fleetroot_http_requests_total{route="${esc(route)}",status="${status}"} ${n}`);
    }
    out.push("# HELP fleetroot_http_request_duration_seconds Time spent handling requests.");
    out.push("# TYPE fleetroot_http_request_duration_seconds summary");
    for (const [route, d] of this.routes) {
      out.push(`fleetroot_http_request_duration_seconds_sum{route="${esc(route)}"} ${d.sum.toFixed(6)}`);
      out.push(`fleetroot_http_request_duration_seconds_count{route="${esc(route)}"} ${d.count}`);
    }
    out.push(
      "# HELP fleetroot_audit_failures_total Requests refused because their audit entry could not be written.",
    );
    out.push("# TYPE fleetroot_audit_failures_total counter");
    out.push(`fleetroot_audit_failures_total ${this.auditFailures}`);
    out.push("# HELP fleetroot_uptime_seconds Seconds since the server started.");
    out.push("# TYPE fleetroot_uptime_seconds gauge");
    out.push(`fleetroot_uptime_seconds ${((Date.now() - this.started) / 1000).toFixed(0)}`);
    for (const [name, value] of Object.entries(gauges)) {
      out.push(`# TYPE ${name} ${name.endsWith("_total") ? "counter" : "gauge"}`);
      out.push(`${name} ${value}`);
    }
    return out.join("\n") + "\n";
  }
}

function esc(s: string): string {
  return s.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}
