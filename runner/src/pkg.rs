//! `cargo uk pkg`: an app as an OCI image, for podman, containerd and Kubernetes with the
//! OCI runtime of runner/oci (`uk-runtime`).
//!
//! The image has one layer, a rootfs holding:
//! - `/unikernel/kernel.elf`: the image as built, unstripped: its symbols let a fault
//!   report name functions, for a few KiB (the guest's memory holds only the loaded
//!   segments either way);
//! - `/unikernel/files/...`: the app's `files` folder (its `[package.metadata.unikernel]`
//!   `files`), which the runtime packs into the initrd when it creates the container;
//! - `/unikernel/image.json`: the [`ImageMetadata`] the runtime boots by. Labels do not
//!   reach a runtime's config.json, so the rootfs carries what the runtime needs.
//!
//! Every structure is `oci-spec`'s; the output is reproducible: the tar entries are sorted
//! with fixed owners and times, the JSON keys sorted, nothing records when it was made.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use oci_spec::image::{
    ANNOTATION_REF_NAME, Arch, ConfigBuilder, Descriptor, DescriptorBuilder, ImageConfiguration,
    ImageConfigurationBuilder, ImageIndexBuilder, ImageManifestBuilder, MediaType,
    OciLayoutBuilder, Os, RootFsBuilder, Sha256Digest,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};

/// Where the image's files lie in the rootfs.
pub const UNIKERNEL_DIR: &str = "unikernel";
/// The metadata file, relative to the rootfs.
pub const METADATA_PATH: &str = "unikernel/image.json";
/// The kernel, relative to the rootfs.
pub const KERNEL_PATH: &str = "unikernel/kernel.elf";
/// The app's files, relative to the rootfs.
pub const FILES_PATH: &str = "unikernel/files";
/// The metadata's format; a runtime refuses a newer one.
pub const METADATA_VERSION: u32 = 1;
/// The annotation containerd's `ctr images import` names an image by.
const CONTAINERD_IMAGE_NAME: &str = "io.containerd.image.name";

/// What the runtime needs to boot the image: `/unikernel/image.json` in the rootfs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageMetadata {
    /// [`METADATA_VERSION`].
    pub version: u32,
    /// The kernel, a path in the rootfs.
    pub kernel: String,
    /// A folder in the rootfs to pack into the initrd (the guest's `fs`).
    #[serde(default)]
    pub files: Option<String>,
    /// Guest memory in MiB.
    pub memory_mib: u32,
    /// The app's arguments (after the `--` of the kernel command line).
    #[serde(default)]
    pub args: Vec<String>,
    /// Kernel flags (before the `--`), e.g. `unikernel.log=debug`.
    #[serde(default)]
    pub kernel_flags: Vec<String>,
    /// The subsystems of the manifest note, in boot order.
    pub subsystems: Vec<String>,
    /// The network the image needs, if it links `net`.
    #[serde(default)]
    pub network: Option<NetworkNeeds>,
}

/// The network of an image that links `net`: its address is compiled in
/// (`net(ipv4 = ..)`), so the runtime routes the container's traffic to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkNeeds {
    /// The guest's address and prefix length, `10.0.2.15/24`.
    pub guest_cidr: String,
    /// The gateway the guest sends through: the tap's address on the host side.
    pub gateway: String,
    /// The TCP ports the guest listens on.
    pub tcp_ports: Vec<u16>,
}

impl NetworkNeeds {
    /// What the examples declare, `net(ipv4 = "10.0.2.15/24", gateway = "10.0.2.2")`,
    /// listening on `tcp_ports`.
    pub fn standard(tcp_ports: Vec<u16>) -> Self {
        NetworkNeeds {
            guest_cidr: "10.0.2.15/24".into(),
            gateway: "10.0.2.2".into(),
            tcp_ports,
        }
    }

    /// The guest's address without the prefix length.
    pub fn guest_address(&self) -> &str {
        self.guest_cidr
            .split_once('/')
            .map_or(&self.guest_cidr, |(address, _)| address)
    }

    /// The prefix length (24 when the address has none).
    pub fn prefix_len(&self) -> u8 {
        self.guest_cidr
            .split_once('/')
            .and_then(|(_, len)| len.parse().ok())
            .unwrap_or(24)
    }
}

impl ImageMetadata {
    /// Reads the metadata of the rootfs at `rootfs`; `Ok(None)` when it has none (not a
    /// unikernel image).
    pub fn read(rootfs: &Path) -> Result<Option<Self>> {
        let path = rootfs.join(METADATA_PATH);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(Error::new(format!("cannot read {}: {err}", path.display()))),
        };
        let metadata: ImageMetadata = serde_json::from_str(&text)
            .map_err(|err| Error::new(format!("{}: {err}", path.display())))?;
        if metadata.version > METADATA_VERSION {
            return Err(Error::new(format!(
                "{}: version {} is newer than this runtime reads ({METADATA_VERSION})",
                path.display(),
                metadata.version
            )));
        }
        Ok(Some(metadata))
    }
}

/// What to package.
#[derive(Debug, Clone)]
pub struct PkgOptions {
    /// The built image.
    pub elf: PathBuf,
    /// `name:version`.
    pub tag: String,
    /// A folder for the image layout, or a `.tar` file for an archive of it.
    pub output: PathBuf,
    /// The app's files folder.
    pub files: Option<PathBuf>,
    pub memory_mib: u32,
    pub args: Vec<String>,
    pub kernel_flags: Vec<String>,
    /// Ports the guest listens on, for an image that links `net`.
    pub tcp_ports: Vec<u16>,
}

/// What [`package`] wrote.
#[derive(Debug, Clone)]
pub struct Packaged {
    /// The manifest's digest, `sha256:...`: the image's identity.
    pub manifest_digest: String,
    /// The layer's size in bytes.
    pub layer_size: u64,
    pub metadata: ImageMetadata,
}

/// Writes the OCI image of `options.elf`.
pub fn package(options: &PkgOptions) -> Result<Packaged> {
    let info = crate::elf::validate(&options.elf)?;
    let subsystems = info.subsystems.clone().unwrap_or_default();
    let links_net = subsystems.iter().any(|name| name == "net");
    let metadata = ImageMetadata {
        version: METADATA_VERSION,
        kernel: format!("/{KERNEL_PATH}"),
        files: options.files.as_ref().map(|_| format!("/{FILES_PATH}")),
        memory_mib: options.memory_mib,
        args: options.args.clone(),
        kernel_flags: options.kernel_flags.clone(),
        subsystems,
        network: links_net.then(|| NetworkNeeds::standard(options.tcp_ports.clone())),
    };
    let layer = layer_tar(&options.elf, options.files.as_deref(), &metadata)?;
    let (name, version) = split_tag(&options.tag)?;

    let mut blobs: Vec<(String, Vec<u8>)> = Vec::new();
    let layer_digest = sha256(&layer);
    let layer_descriptor = descriptor(MediaType::ImageLayer, &layer, None)?;
    blobs.push((layer_digest.clone(), layer));

    let config = image_config(&metadata, &layer_digest, &options.tag)?;
    let config_json = canonical_json(&config)?;
    let config_descriptor = descriptor(MediaType::ImageConfig, &config_json, None)?;
    blobs.push((sha256(&config_json), config_json));

    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config_descriptor)
        .layers(vec![layer_descriptor])
        .build()
        .map_err(oci_error)?;
    let manifest_json = canonical_json(&manifest)?;
    let reference = full_reference(name, version);
    let annotations = [
        (ANNOTATION_REF_NAME.to_string(), reference.clone()),
        (CONTAINERD_IMAGE_NAME.to_string(), reference),
    ]
    .into_iter()
    .collect();
    let manifest_descriptor =
        descriptor(MediaType::ImageManifest, &manifest_json, Some(annotations))?;
    let manifest_digest = format!("sha256:{}", sha256(&manifest_json));
    blobs.push((sha256(&manifest_json), manifest_json));

    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(vec![manifest_descriptor])
        .build()
        .map_err(oci_error)?;
    let layout = OciLayoutBuilder::default()
        .image_layout_version("1.0.0")
        .build()
        .map_err(oci_error)?;
    let mut files: Vec<(String, Vec<u8>)> = vec![
        ("oci-layout".into(), canonical_json(&layout)?),
        ("index.json".into(), canonical_json(&index)?),
    ];
    for (digest, bytes) in blobs {
        files.push((format!("blobs/sha256/{digest}"), bytes));
    }
    let layer_size = files
        .iter()
        .find(|(path, _)| path.ends_with(&layer_digest))
        .map_or(0, |(_, bytes)| bytes.len() as u64);
    if options.output.extension().is_some_and(|ext| ext == "tar") {
        write_archive(&options.output, &files)?;
    } else {
        write_layout(&options.output, &files)?;
    }
    Ok(Packaged {
        manifest_digest,
        layer_size,
        metadata,
    })
}

/// `name:version` split at the last colon after the last slash (`localhost:5000/x` has no
/// tag); the version defaults to `latest`.
fn split_tag(tag: &str) -> Result<(&str, &str)> {
    let slash = tag.rfind('/').map_or(0, |at| at + 1);
    let (name, version) = match tag[slash..].rfind(':') {
        Some(at) => (&tag[..slash + at], &tag[slash + at + 1..]),
        None => (tag, "latest"),
    };
    let valid_name = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-/:".contains(c));
    let valid_version = !version.is_empty()
        && version.len() <= 128
        && version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if !valid_name || !valid_version {
        return Err(Error::new(format!(
            "--tag {tag}: expected `name:version` (name in lowercase letters, digits, `._-/`; version in letters, digits, `._-`)"
        )));
    }
    Ok((name, version))
}

/// The reference podman and containerd name the image by: `localhost/name:version` for a
/// name without a registry, as podman names images it built.
fn full_reference(name: &str, version: &str) -> String {
    let first = name.split('/').next().unwrap_or(name);
    let has_registry =
        name.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    if has_registry {
        format!("{name}:{version}")
    } else {
        format!("localhost/{name}:{version}")
    }
}

fn oci_error(err: impl std::fmt::Display) -> Error {
    Error::new(format!("cannot build the OCI image: {err}"))
}

/// The hex SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn descriptor(
    media_type: MediaType,
    bytes: &[u8],
    annotations: Option<std::collections::HashMap<String, String>>,
) -> Result<Descriptor> {
    let digest: Sha256Digest = sha256(bytes).parse().map_err(oci_error)?;
    let mut builder = DescriptorBuilder::default()
        .media_type(media_type)
        .size(bytes.len() as u64)
        .digest(digest);
    if let Some(annotations) = annotations {
        builder = builder.annotations(annotations);
    }
    builder.build().map_err(oci_error)
}

/// JSON with its object keys sorted (oci-spec keeps labels and annotations in hash maps,
/// whose order changes from run to run), so that the same image has the same digest.
fn canonical_json(value: &impl Serialize) -> Result<Vec<u8>> {
    let value = serde_json::to_value(value).map_err(oci_error)?;
    serde_json::to_vec(&sort_keys(value)).map_err(oci_error)
}

fn sort_keys(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let sorted: BTreeMap<String, Value> = map
                .into_iter()
                .map(|(key, value)| (key, sort_keys(value)))
                .collect();
            Value::Object(sorted.into_iter().collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sort_keys).collect()),
        other => other,
    }
}

/// The image configuration: linux/amd64 (what podman and containerd match against the
/// host; the runtime boots the kernel, not a Linux process), the kernel as entrypoint,
/// the metadata as labels for people who inspect the image.
fn image_config(
    metadata: &ImageMetadata,
    layer_digest: &str,
    tag: &str,
) -> Result<ImageConfiguration> {
    let mut labels = std::collections::HashMap::new();
    labels.insert(
        "org.unikernel.memory".to_string(),
        format!("{}", metadata.memory_mib),
    );
    labels.insert(
        "org.unikernel.subsystems".to_string(),
        metadata.subsystems.join(" "),
    );
    labels.insert(
        "org.opencontainers.image.title".to_string(),
        tag.to_string(),
    );
    let mut config = ConfigBuilder::default()
        .entrypoint(vec![metadata.kernel.clone()])
        .cmd(metadata.args.clone())
        .labels(labels);
    if let Some(network) = &metadata.network {
        config = config.exposed_ports(
            network
                .tcp_ports
                .iter()
                .map(|port| format!("{port}/tcp"))
                .collect::<Vec<_>>(),
        );
    }
    let diff_id = format!("sha256:{layer_digest}");
    ImageConfigurationBuilder::default()
        .architecture(Arch::Amd64)
        .os(Os::Linux)
        .config(config.build().map_err(oci_error)?)
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(vec![diff_id])
                .build()
                .map_err(oci_error)?,
        )
        .build()
        .map_err(oci_error)
}

/// A tar header with the fixed owner and time of every entry.
fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(size);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header
}

fn tar_error(err: std::io::Error) -> Error {
    Error::new(format!("cannot write the image's layer: {err}"))
}

/// The rootfs layer (an uncompressed tar, which both podman and containerd take).
fn layer_tar(elf: &Path, files: Option<&Path>, metadata: &ImageMetadata) -> Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    let dir = |tar: &mut tar::Builder<Vec<u8>>, path: &str| {
        let mut header = header(tar::EntryType::Directory, 0o755, 0);
        tar.append_data(&mut header, format!("{path}/"), std::io::empty())
            .map_err(tar_error)
    };
    let file = |tar: &mut tar::Builder<Vec<u8>>, path: &str, mode: u32, bytes: &[u8]| {
        let mut header = header(tar::EntryType::Regular, mode, bytes.len() as u64);
        tar.append_data(&mut header, path, bytes).map_err(tar_error)
    };
    dir(&mut tar, UNIKERNEL_DIR)?;
    if let Some(files) = files {
        dir(&mut tar, FILES_PATH)?;
        add_folder(&mut tar, files, files)?;
    }
    let metadata_json = serde_json::to_vec_pretty(metadata).map_err(oci_error)?;
    file(&mut tar, METADATA_PATH, 0o644, &metadata_json)?;
    let kernel = std::fs::read(elf)
        .map_err(|err| Error::new(format!("cannot read {}: {err}", elf.display())))?;
    file(&mut tar, KERNEL_PATH, 0o755, &kernel)?;
    tar.into_inner().map_err(tar_error)
}

/// The folder `dir` (inside `root`) under `unikernel/files/`, sorted, links followed.
fn add_folder(tar: &mut tar::Builder<Vec<u8>>, root: &Path, dir: &Path) -> Result<()> {
    let cannot = |path: &Path, err: std::io::Error| {
        Error::new(format!("files: cannot read {}: {err}", path.display()))
    };
    for path in crate::disk::sorted_children(dir).map_err(|err| cannot(dir, err))? {
        let relative = path.strip_prefix(root).expect("a child of the root");
        let name = Path::new(FILES_PATH).join(relative);
        let metadata = std::fs::metadata(&path).map_err(|err| cannot(&path, err))?;
        if metadata.is_dir() {
            let mut header = header(tar::EntryType::Directory, 0o755, 0);
            tar.append_data(&mut header, &name, std::io::empty())
                .map_err(tar_error)?;
            add_folder(tar, root, &path)?;
        } else if metadata.is_file() {
            let bytes = std::fs::read(&path).map_err(|err| cannot(&path, err))?;
            let mut header = header(tar::EntryType::Regular, 0o644, bytes.len() as u64);
            tar.append_data(&mut header, &name, bytes.as_slice())
                .map_err(tar_error)?;
        }
    }
    Ok(())
}

/// The image layout as a folder (replacing what the folder held of an earlier image).
fn write_layout(dir: &Path, files: &[(String, Vec<u8>)]) -> Result<()> {
    let cannot = |path: &Path, err: std::io::Error| {
        Error::new(format!("cannot write {}: {err}", path.display()))
    };
    let blobs = dir.join("blobs");
    if blobs.exists() {
        std::fs::remove_dir_all(&blobs).map_err(|err| cannot(&blobs, err))?;
    }
    for (path, bytes) in files {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|err| cannot(parent, err))?;
        }
        std::fs::write(&path, bytes).map_err(|err| cannot(&path, err))?;
    }
    Ok(())
}

/// The image layout as one tar (an oci-archive: `podman load -i`, `ctr images import`).
fn write_archive(path: &Path, files: &[(String, Vec<u8>)]) -> Result<()> {
    let mut tar = tar::Builder::new(Vec::new());
    for dir in ["blobs/", "blobs/sha256/"] {
        let mut header = header(tar::EntryType::Directory, 0o755, 0);
        tar.append_data(&mut header, dir, std::io::empty())
            .map_err(tar_error)?;
    }
    for (name, bytes) in files {
        let mut header = header(tar::EntryType::Regular, 0o644, bytes.len() as u64);
        tar.append_data(&mut header, name, bytes.as_slice())
            .map_err(tar_error)?;
    }
    let bytes = tar.into_inner().map_err(tar_error)?;
    if let Some(parent) = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent)
            .map_err(|err| Error::new(format!("cannot create {}: {err}", parent.display())))?;
    }
    let mut file = std::fs::File::create(path)
        .map_err(|err| Error::new(format!("cannot write {}: {err}", path.display())))?;
    file.write_all(&bytes)
        .map_err(|err| Error::new(format!("cannot write {}: {err}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_split_at_the_version_colon_only() {
        assert_eq!(split_tag("hello").unwrap(), ("hello", "latest"));
        assert_eq!(split_tag("hello:1.0").unwrap(), ("hello", "1.0"));
        assert_eq!(
            split_tag("localhost:5000/uk/http:v2").unwrap(),
            ("localhost:5000/uk/http", "v2")
        );
        assert!(split_tag("Hello:1").is_err());
        assert!(split_tag("hello:").is_err());
    }

    #[test]
    fn names_without_a_registry_are_local() {
        assert_eq!(full_reference("hello", "1"), "localhost/hello:1");
        assert_eq!(full_reference("uk/hello", "1"), "localhost/uk/hello:1");
        assert_eq!(
            full_reference("registry.example.com/hello", "1"),
            "registry.example.com/hello:1"
        );
    }

    #[test]
    fn canonical_json_sorts_nested_keys() {
        let value = serde_json::json!({"b": {"z": 1, "a": 2}, "a": [ {"y": 1, "x": 2} ]});
        let text = String::from_utf8(canonical_json(&value).unwrap()).unwrap();
        assert_eq!(text, r#"{"a":[{"x":2,"y":1}],"b":{"a":2,"z":1}}"#);
    }

    #[test]
    fn the_network_needs_split_the_address() {
        let needs = NetworkNeeds::standard(vec![80]);
        assert_eq!(needs.guest_address(), "10.0.2.15");
        assert_eq!(needs.prefix_len(), 24);
    }
}
