import { describe, expect, it } from "vitest";
import { Metrics } from "./metrics.js";

describe("Metrics", () => {
  it("counts requests per route and status, sums latency per route, types counters and gauges", () => {
    const m = new Metrics();
    m.observe("/v1/a", 200, 2);
    m.observe("/v1/a", 200, 4);
    m.observe("/v1/a", 403, 1);
    m.observe('/v1/b"x', 204, 10);
    const text = m.render({ fleetroot_sealed: 0, fleetroot_audit_syncs_total: 7 });
    expect(text).toContain('fleetroot_http_requests_total{route="/v1/a",status="200"} 2');
    expect(text).toContain('fleetroot_http_requests_total{route="/v1/a",status="403"} 1');
    expect(text).toContain('fleetroot_http_requests_total{route="/v1/b\\"x",status="204"} 1');
    expect(text).toContain('fleetroot_http_request_duration_seconds_sum{route="/v1/a"} 0.007000');
    expect(text).toContain('fleetroot_http_request_duration_seconds_count{route="/v1/a"} 3');
    expect(text).toMatch(/^# TYPE fleetroot_sealed gauge\nfleetroot_sealed 0$/m);
    expect(text).toMatch(/^# TYPE fleetroot_audit_syncs_total counter\nfleetroot_audit_syncs_total 7$/m);
  });
});
