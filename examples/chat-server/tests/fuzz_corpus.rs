//! Replays the fuzz corpora of zt-chat-server's fuzz targets (fuzz/corpus/settings,
//! fuzz/corpus/realtime_frame, fuzz/corpus/tunnel_head) through each target's own check.

mod settings {
    include!("../../../fuzz/checks/settings.rs");
    include!("../../../fuzz/checks/replay.rs");

    #[test]
    fn settings_corpus() {
        replay(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fuzz/corpus/settings"
        ));
    }
}

mod realtime_frame {
    include!("../../../fuzz/checks/realtime_frame.rs");
    include!("../../../fuzz/checks/replay.rs");

    #[test]
    fn realtime_frame_corpus() {
        replay(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fuzz/corpus/realtime_frame"
        ));
    }
}

mod tunnel_head {
    include!("../../../fuzz/checks/tunnel_head.rs");
    include!("../../../fuzz/checks/replay.rs");

    #[test]
    fn tunnel_head_corpus() {
        replay(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fuzz/corpus/tunnel_head"
        ));
    }
}
