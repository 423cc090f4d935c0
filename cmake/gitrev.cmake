# Run at every build (cmake -P): writes OUT with HS_GIT_REVISION, the git
# revision of SRC ("6b7790b", "6b7790b-dirty"), or a note that the tree
# is not a git checkout.  configure_file leaves OUT alone when its content
# is unchanged, so only main.c recompiles, and only when the revision moves.
set(rev "not built from a git checkout")
find_package(Git QUIET)
if(GIT_FOUND)
  execute_process(COMMAND ${GIT_EXECUTABLE} -C ${SRC} rev-parse --is-inside-work-tree
    OUTPUT_VARIABLE inside OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE r1)
  execute_process(COMMAND ${GIT_EXECUTABLE} -C ${SRC} rev-parse --show-toplevel
    OUTPUT_VARIABLE top OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE r2)
  get_filename_component(src_real ${SRC} REALPATH)
  if(top)
    get_filename_component(top ${top} REALPATH)
  endif()
  # Only SRC's own repository: a source tarball unpacked inside some other
  # checkout must not report that checkout's revision.
  if(r1 EQUAL 0 AND r2 EQUAL 0 AND inside STREQUAL "true" AND top STREQUAL src_real)
    execute_process(COMMAND ${GIT_EXECUTABLE} -C ${SRC} describe --always --dirty --abbrev=12
      OUTPUT_VARIABLE desc OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE r3)
    if(r3 EQUAL 0 AND desc)
      set(rev "git ${desc}")
    endif()
  endif()
endif()
set(HS_GIT_REVISION "${rev}")
configure_file(${CMAKE_CURRENT_LIST_DIR}/hs_gitrev.h.in ${OUT} @ONLY)
