//! Cheap checks, made before any AWS SDK region provider runs, of whether one could answer
//! here: a shared profile file exists, or this host is EC2 (its DMI vendor or Xen hypervisor
//! id say so, or ECS's variables or an instance metadata endpoint are set). Off AWS with
//! nothing configured, start-up then runs none of the SDK's provider code, which keeps
//! waggle's idle memory down; wherever a provider could find a region, it still asks. A host
//! that shows none of these (some sandboxes hide DMI) is taken as off EC2: set `AWS_REGION`
//! there.

/// Whether the shared config or credentials file exists (`AWS_CONFIG_FILE`,
/// `AWS_SHARED_CREDENTIALS_FILE`, else under `$HOME/.aws/`); true when `HOME` is unknown.
pub(crate) fn profile_files_may_exist(env: impl Fn(&str) -> Option<String>, exists: impl Fn(&str) -> bool) -> bool {
    let home = env("HOME");
    let file = |variable: &str, default: &str| {
        env(variable)
            .filter(|path| !path.is_empty())
            .or_else(|| home.as_ref().map(|home| format!("{home}/.aws/{default}")))
    };
    match (file("AWS_CONFIG_FILE", "config"), file("AWS_SHARED_CREDENTIALS_FILE", "credentials")) {
        (Some(config), Some(credentials)) => exists(&config) || exists(&credentials),
        _ => true,
    }
}

/// Variables ECS sets in a task's containers, and the SDKs' own instance metadata endpoint
/// (an emulator, or metadata reached another way).
const METADATA_VARIABLES: &[&str] = &[
    "ECS_CONTAINER_METADATA_URI_V4",
    "ECS_CONTAINER_METADATA_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
];

/// Whether instance metadata may answer: ECS's variables or an instance metadata endpoint are
/// set, the DMI vendor is Amazon EC2, or the Xen hypervisor id starts with `ec2`.
pub(crate) fn may_be_on_ec2(env: impl Fn(&str) -> Option<String>, read: impl Fn(&str) -> Option<String>) -> bool {
    METADATA_VARIABLES.iter().any(|name| env(name).is_some_and(|value| !value.is_empty()))
        || read("/sys/hypervisor/uuid").is_some_and(|uuid| uuid.trim().to_ascii_lowercase().starts_with("ec2"))
        || read("/sys/devices/virtual/dmi/id/sys_vendor").is_some_and(|vendor| vendor.trim() == "Amazon EC2")
}

/// [`profile_files_may_exist`] for this process.
pub(crate) fn profile_files_here() -> bool {
    profile_files_may_exist(|name| std::env::var(name).ok(), |path| std::path::Path::new(path).exists())
}

/// [`may_be_on_ec2`] for this host.
pub(crate) fn ec2_here() -> bool {
    may_be_on_ec2(|name| std::env::var(name).ok(), |path| std::fs::read_to_string(path).ok())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn files(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |key| map.get(key).cloned()
    }

    #[test]
    fn ec2_is_told_by_its_dmi_vendor_xen_id_or_ecs_variables() {
        let no_env = files(&[]);
        assert!(may_be_on_ec2(&no_env, files(&[("/sys/devices/virtual/dmi/id/sys_vendor", "Amazon EC2\n")])));
        assert!(may_be_on_ec2(
            &no_env,
            files(&[
                ("/sys/devices/virtual/dmi/id/sys_vendor", "Xen\n"),
                ("/sys/hypervisor/uuid", "ec2e1916-9099-7caf-fd21-012345abcdef\n"),
            ])
        ));
        assert!(!may_be_on_ec2(&no_env, files(&[("/sys/devices/virtual/dmi/id/sys_vendor", "QEMU\n")])));
        assert!(!may_be_on_ec2(&no_env, files(&[])), "nothing readable: not EC2");
        let ecs = files(&[("ECS_CONTAINER_METADATA_URI_V4", "http://169.254.170.2/v4/abc")]);
        assert!(may_be_on_ec2(ecs, files(&[])));
        let endpoint = files(&[("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1338")]);
        assert!(may_be_on_ec2(endpoint, files(&[])));
    }

    #[test]
    fn profile_files_are_looked_for_where_the_sdk_reads_them() {
        let home = files(&[("HOME", "/home/ada")]);
        assert!(profile_files_may_exist(&home, |path| path == "/home/ada/.aws/credentials"));
        assert!(!profile_files_may_exist(&home, |_| false));
        let custom = files(&[("HOME", "/home/ada"), ("AWS_CONFIG_FILE", "/etc/aws.conf")]);
        assert!(profile_files_may_exist(&custom, |path| path == "/etc/aws.conf"));
        assert!(profile_files_may_exist(files(&[]), |_| false), "without HOME, cannot tell");
    }
}
