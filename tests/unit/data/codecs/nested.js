function decodeUplink(input) {
  return {
    data: {
      gps: { lat: 39.9042, lon: 116.4074, fix: { sats: 7, ok: true } },
      temps: [21.5, 22.25],
      nothing: null,
      undef: undefined,
      bad: NaN,
      inf: Infinity,
      fn: function () { return 1; },
      long_text: "0123456789abcdefghijklmnopqrstuvwxyz",
      label: "\u95e8\u5df2\u5173\u95ed\u95e8\u5df2\u5173\u95ed\u95e8\u5df2\u5173\u95ed"
    }
  };
}
