//! A graph from the coordinate columns of per-station files, through the spatio-temporal
//! pipeline: the k-nearest-neighbour graph of the stations' great-circle distances.

use strata_data::DataConfig;
use strata_data::source::coords::GraphFrom;

#[test]
fn coordinate_columns_of_a_folder_build_the_graph() {
    let dir = std::env::temp_dir().join(format!("strata-wild-graphs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let stations = [("Aotizhongxin", 39.98, 116.40), ("Changping", 40.22, 116.23), ("Dingling", 40.29, 116.22)];
    for (name, lat, lon) in stations {
        let mut text = String::from("date,PM2.5,latitude,longitude\n");
        for k in 0..120 {
            text += &format!("2020-01-{:02} {:02}:00:00,{},{lat},{lon}\n", 1 + k / 24, k % 24, 50 + k % 7);
        }
        std::fs::write(dir.join(format!("{name}.csv")), text).unwrap();
    }
    let cfg = DataConfig {
        dataset: "spatial".into(),
        path: Some(dir.clone()),
        target: Some("PM2.5".into()),
        coordinate_columns: Some(vec!["latitude".into(), "longitude".into()]),
        graph_from: Some(GraphFrom::Knn),
        graph_k: 1,
        seq_len: 12,
        pred_len: 12,
        ..Default::default()
    };
    let d = strata_data::prepare_spatial(&cfg).unwrap();
    assert_eq!(d.ids.as_deref().unwrap(), ["Aotizhongxin", "Changping", "Dingling"]);
    assert_eq!(d.in_features, 3, "PM2.5, time of day, day of week (hourly data: 24 steps a day)");
    assert_eq!(d.steps_per_day, Some(24));
    // Changping and Dingling are 8 km apart; Aotizhongxin's nearest is Changping (29 km).
    assert_eq!(d.graph.unwrap().adj, [0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0]);
    // The coordinates are not model inputs.
    assert_eq!(d.source.unwrap().1.layout, "folder");
}
