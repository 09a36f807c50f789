/** Request counters and latency sums, rendered in Prometheus text exposition format. */
export class Metrics {
  private readonly requests = new Map<string, number>();
  private readonly durations = new Map<string, { sum: number; count: number }>();
  auditFailures = 0;
  private readonly started = Date.now();

  observe(route: string, status: number, ms: number): void {
    const key = `${route}\u0000${status}`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
    const d = this.durations.get(route) ?? { sum: 0, count: 0 };
    d.sum += ms / 1000;
    d.count++;
    this.durations.set(route, d);
  }

  render(gauges: Record<string, number>): string {
    const out: string[] = [];
    out.push("# HELP fleetroot_http_requests_total HTTP requests by route and status.");
    out.push("# TYPE fleetroot_http_requests_total counter");
    for (const [key, n] of this.requests) {
      const [route, status] = key.split("\u0000");
      out.push(`fleetroot_http_requests_total{route="${esc(route!)}",status="${status}"} ${n}`);
    }
    out.push("# HELP fleetroot_http_request_duration_seconds Time spent handling requests.");
    out.push("# TYPE fleetroot_http_request_duration_seconds summary");
    for (const [route, d] of this.durations) {
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
