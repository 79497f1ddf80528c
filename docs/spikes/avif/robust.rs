//! Truncated / corrupted input must give Err, never a panic or a partial image.
const FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/p4a-420-8.avif");

#[test]
fn truncated_file_is_error() {
    let data = std::fs::read(FILE).unwrap();
    for n in (0..data.len()).step_by(997).chain([data.len() - 1]) {
        assert!(avifspike::decode(&data[..n]).is_err(), "cut at {n} decoded");
    }
    assert!(avifspike::decode(&data).is_ok());
}

#[test]
fn truncated_obus_are_error() {
    let data = std::fs::read(FILE).unwrap();
    let avif = avif_parse::read_avif(&mut &data[..]).unwrap();
    let obus = &avif.primary_item[..];
    for n in (0..obus.len()).step_by(1999).chain([obus.len() - 1, obus.len() - 10]) {
        let r = avifspike::decode_av1(&obus[..n]);
        assert!(r.is_err(), "OBUs cut at {n}/{} decoded", obus.len());
    }
}

#[test]
fn corrupted_obus_do_not_panic() {
    let data = std::fs::read(FILE).unwrap();
    let avif = avif_parse::read_avif(&mut &data[..]).unwrap();
    let mut seed = 0x1234_5678u64;
    let mut ok = 0;
    for _ in 0..200 {
        let mut obus = avif.primary_item.to_vec();
        for _ in 0..8 {
            seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17;
            let i = (seed as usize) % obus.len();
            obus[i] ^= (seed >> 32) as u8 | 1;
        }
        if avifspike::decode_av1(&obus).is_ok() { ok += 1; }
    }
    eprintln!("corrupted: {ok}/200 still decoded (garbage pixels, expected)");
}
