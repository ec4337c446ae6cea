//! `molt keygen --out DIR`: an ed25519 key pair for signing releases.

use crate::signing::{self, PUBLIC_KEY_FILE, SECRET_KEY_FILE};
use clap::Args;
use std::path::PathBuf;

/// `molt keygen` arguments.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Directory to write `molt.key` (secret, mode 0600) and `molt.pub` into; existing key
    /// files are never overwritten.
    #[arg(long)]
    out: PathBuf,
}

/// Writes the key pair and prints the public key's fingerprint.
pub fn run(args: KeygenArgs) -> anyhow::Result<()> {
    let public = signing::generate(&args.out)?;
    let (secret, public_file) = (args.out.join(SECRET_KEY_FILE), args.out.join(PUBLIC_KEY_FILE));
    println!(
        "secret key  {} (sign with: molt push --sign-key)",
        secret.display()
    );
    println!(
        "public key  {} (trust with: molt run --trusted-key)",
        public_file.display()
    );
    println!("fingerprint {}", public.fingerprint());
    Ok(())
}
