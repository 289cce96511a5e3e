// The book's tables (issue 20): a cell breaks between words, never inside one. A table too wide
// for the page that way is first set smaller (`tsfmicro-small`); only if it still does not fit
// may its cells break inside words (`tsfmicro-tight`, tsfmicro.css), so nothing is hidden behind
// a sideways scroll. Checked again when the window is resized.
(function () {
  function tooWide(table) {
    var box = table.parentElement;
    return box && table.scrollWidth > box.clientWidth + 1;
  }
  function fit() {
    document.querySelectorAll('.cell_output table').forEach(function (table) {
      table.classList.remove('tsfmicro-small', 'tsfmicro-tight');
      if (tooWide(table)) table.classList.add('tsfmicro-small');
      if (tooWide(table)) table.classList.add('tsfmicro-tight');
    });
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', fit);
  else fit();
  window.addEventListener('resize', fit);
})();
