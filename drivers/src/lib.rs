//! ember-drivers: sensor and actuator drivers behind ember's driver contracts.
//!
//! Module map: none yet. No driver has been written: ember runs in simulators today, through
//! the `World` contract (`ember_agent::world`) implemented by `ember_sim_bridge::SimWorld`.
//! This crate is where a robot's drivers go (cameras, arms, bases), composed into a robot
//! `World` by `launch/src/wiring.rs`, each taking the robot commands of
//! `ember_agent::world::Command` (`BaseTwist`, `ArmTrajectory`, `Gripper`, `Stop`) and
//! reporting `ember_agent::observation` data (camera frames with intrinsics and poses from
//! `ember_calibration`, proprioception). Following LeRobot's shape, a driver will be a small
//! type with `connect`, `observe` and `send` returning what was actually sent after clipping;
//! safety (limits, watchdog, e-stop) sits in the executor, in one place, not in each driver.
