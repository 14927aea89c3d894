//! Cloud identity exchanges: turning the mounting pod's service-account token into the cloud
//! credential Akeyless verifies (`cloud-id`). Each cloud keeps its protocol in its own module.

pub mod azure;
