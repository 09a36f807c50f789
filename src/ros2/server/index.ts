/** Fleet provisioning of ROS 2 enclaves (`/v1/ros2/*`); see docs/ros2.md "Fleet provisioning". */
export { type Ros2FleetModule, ros2FleetModule } from "./module.js";
export type { FleetConfig, Assignment, StoredPolicy } from "./store.js";
