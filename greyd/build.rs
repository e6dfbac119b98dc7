//! Rebuild when a migration file is added: `sqlx::migrate!` embeds `migrations/<backend>/*.sql`
//! at compile time, and cargo does not otherwise notice a new file in that directory.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
